"""read_xray: formats, DICOM and every bad input."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cxrkit.errors import CxrkitError, ImageDecodeError
from cxrkit.io import MIN_SIDE, read_xray, resize_image


def _gradient(h: int = 32, w: int = 40) -> np.ndarray:
    return (np.add.outer(np.arange(h), np.arange(w)) * 255 // (h + w - 2)).astype(np.uint8)


# -- formats -----------------------------------------------------------------
def test_png_8bit(tmp_path: Path) -> None:
    arr = _gradient()
    Image.fromarray(arr).save(tmp_path / "a.png")
    img = read_xray(tmp_path / "a.png")
    assert img.dtype == np.float32 and img.shape == (32, 40)
    np.testing.assert_allclose(img, arr / 255.0, atol=1e-6)


def test_png_16bit(tmp_path: Path) -> None:
    arr = (np.arange(32 * 32).reshape(32, 32) * 60).astype(np.uint16)
    Image.fromarray(arr).save(tmp_path / "a.png")
    img = read_xray(tmp_path / "a.png")
    np.testing.assert_allclose(img, arr / 65535.0, atol=1e-6)
    assert img.max() > 0.9


def test_jpeg(tmp_path: Path) -> None:
    arr = _gradient()
    Image.fromarray(arr).save(tmp_path / "a.jpg", quality=95)
    img = read_xray(tmp_path / "a.jpg")
    assert np.abs(img - arr / 255.0).max() < 0.05


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "P", "CMYK", "LA"])
def test_colour_modes_become_the_same_gray(tmp_path: Path, mode: str) -> None:
    gray = _gradient()
    rgb = Image.fromarray(np.stack([gray, gray, gray], -1), "RGB")
    if mode == "LA":
        im = Image.merge("LA", [Image.fromarray(gray), Image.new("L", gray.shape[::-1], 7)])
    elif mode == "RGBA":
        im = rgb.convert("RGBA")
        im.putalpha(Image.new("L", gray.shape[::-1], 7))  # alpha is ignored, not composited
    elif mode == "P":
        im = rgb.convert("P", palette=Image.Palette.ADAPTIVE, colors=256)
    else:
        im = rgb.convert(mode)
    ext = "jpg" if mode == "CMYK" else "png"
    im.save(tmp_path / f"a.{ext}", **({"quality": 100} if ext == "jpg" else {}))
    img = read_xray(tmp_path / f"a.{ext}")
    tol = 0.03 if mode in ("CMYK", "P") else 1e-6
    assert np.abs(img - gray / 255.0).max() <= tol


def test_rgb_uses_itu_601_luma(tmp_path: Path) -> None:
    arr = np.zeros((16, 16, 3), np.uint8)
    arr[..., 0] = 200
    arr[..., 1] = 100
    arr[..., 2] = 50
    Image.fromarray(arr).save(tmp_path / "c.png")
    expected = (200 * 299 + 100 * 587 + 50 * 114) / 1000 / 255
    arr[0, 0] = 0  # not constant
    Image.fromarray(arr).save(tmp_path / "c.png")
    assert read_xray(tmp_path / "c.png")[5, 5] == pytest.approx(expected, abs=1 / 255)


def _dicom(
    path: Path,
    pixels: np.ndarray,
    photometric: str = "MONOCHROME2",
    bits: int = 12,
    **extra: object,
) -> Path:
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "DX"
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = photometric
    ds.BitsAllocated = 16
    ds.BitsStored = bits
    ds.HighBit = bits - 1
    ds.PixelRepresentation = 0
    for k, v in extra.items():
        setattr(ds, k, v)
    ds.PixelData = pixels.astype(np.uint16).tobytes()
    ds.save_as(str(path), enforce_file_format=True)
    return path


def test_dicom_bit_depth_and_monochrome1(tmp_path: Path) -> None:
    px = (np.arange(32 * 32).reshape(32, 32) * 4).astype(np.uint16)  # 0..4092, 12 bits
    m2 = read_xray(_dicom(tmp_path / "a.dcm", px))
    np.testing.assert_allclose(m2, px / 4095.0, atol=1e-6)
    m1 = read_xray(_dicom(tmp_path / "b.dcm", px, "MONOCHROME1"))
    np.testing.assert_allclose(m1, 1 - px / 4095.0, atol=1e-6)


def test_dicom_rescale_and_window(tmp_path: Path) -> None:
    px = (np.arange(32 * 32).reshape(32, 32) * 4).astype(np.uint16)
    # slope 2, intercept -1000: values -1000..7184; window centre 0 width 2000
    img = read_xray(
        _dicom(
            tmp_path / "w.dcm",
            px,
            RescaleSlope=2,
            RescaleIntercept=-1000,
            WindowCenter=0,
            WindowWidth=2000,
        )
    )
    hu = px * 2.0 - 1000
    expected = np.clip((hu + 0.5) / 1999 + 0.5, 0, 1)
    np.testing.assert_allclose(img, expected, atol=1e-5)
    # rescale only: scaled over the rescaled range of 12 bits
    img2 = read_xray(_dicom(tmp_path / "r.dcm", px, RescaleSlope=2, RescaleIntercept=-1000))
    np.testing.assert_allclose(img2, px / 4095.0, atol=1e-6)


# -- bad input -----------------------------------------------------------------
def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(
        ImageDecodeError, match=r"^Image '.*nope\.png' does not exist\. Check the path"
    ):
        read_xray(tmp_path / "nope.png")


def test_zero_byte_file(tmp_path: Path) -> None:
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(
        ImageDecodeError, match=r"^Image '.*empty\.png' is empty \(0 bytes\)\. The download"
    ):
        read_xray(tmp_path / "empty.png")


def test_text_named_png(tmp_path: Path) -> None:
    (tmp_path / "notes.png").write_text("this is not an image\n" * 5)
    with pytest.raises(
        ImageDecodeError, match=r"^Image '.*notes\.png' is not an image: its content is a text file"
    ):
        read_xray(tmp_path / "notes.png")


@pytest.mark.parametrize(
    "content, kind",
    [
        (
            b"root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1::/usr/sbin:/usr/sbin/nologin\n",
            "a text file",
        ),
        (
            b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj",
            r"a file of another type \(Adobe Portable Document",
        ),
        (bytes(range(256)) * 4, "binary data of no known type"),
    ],
)
def test_not_an_image_names_the_type_never_the_content(
    tmp_path: Path, content: bytes, kind: str
) -> None:
    (tmp_path / "x.png").write_bytes(content)
    with pytest.raises(
        ImageDecodeError,
        match=rf"^Image '.*x\.png' is not an image: its "
        rf"content is {kind}",
    ) as exc:
        read_xray(tmp_path / "x.png")
    assert repr(content[:8])[2:-1] not in str(exc.value) and "root:x" not in str(exc.value)


@pytest.mark.parametrize("fmt", ["png", "jpg"])
def test_truncated(tmp_path: Path, fmt: str) -> None:
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (64, 64), dtype=np.uint8)).save(tmp_path / f"a.{fmt}")
    data = (tmp_path / f"a.{fmt}").read_bytes()
    (tmp_path / f"a.{fmt}").write_bytes(data[: len(data) // 2])
    with pytest.raises(
        ImageDecodeError,
        match=rf"^Image '.*a\.{fmt}' could not be decoded \(truncated file\)\. "
        r"The file is damaged or incomplete; download it again or remove it\.$",
    ):
        read_xray(tmp_path / f"a.{fmt}")


def _png_header_only(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )


def test_decompression_bomb(tmp_path: Path) -> None:
    (tmp_path / "bomb.png").write_bytes(_png_header_only(100_000, 100_000))
    with pytest.raises(
        ImageDecodeError,
        match=r"^Image '.*bomb\.png' was refused as a possible decompression bomb "
        r"\(.*\)\. If the image is genuine, raise PIL\.Image\.MAX_IMAGE_PIXELS",
    ):
        read_xray(tmp_path / "bomb.png")


def test_decompression_bomb_warning_level_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    Image.fromarray(_gradient(40, 40)).save(tmp_path / "big.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # 1600 px: Pillow would only warn
    with pytest.raises(ImageDecodeError, match=r"decompression bomb"):
        read_xray(tmp_path / "big.png")


def test_one_by_one(tmp_path: Path) -> None:
    Image.new("L", (1, 1), 128).save(tmp_path / "dot.png")
    with pytest.raises(
        ImageDecodeError,
        match=rf"^Image '.*dot\.png' is 1x1 pixels; images must be at least "
        rf"{MIN_SIDE}x{MIN_SIDE}\.",
    ):
        read_xray(tmp_path / "dot.png")


def test_constant_image_is_an_error_or_a_warning(tmp_path: Path) -> None:
    Image.new("L", (32, 32), 0).save(tmp_path / "black.png")
    with pytest.raises(
        ImageDecodeError,
        match=r"^Image '.*black\.png' has the same value \(0\.000\) in every pixel, "
        r"so it carries no picture",
    ):
        read_xray(tmp_path / "black.png")
    with pytest.warns(UserWarning, match="same value"):
        img = read_xray(tmp_path / "black.png", constant="warn")
    assert img.shape == (32, 32) and img.max() == 0


def test_errors_are_cxrkit_and_value_errors(tmp_path: Path) -> None:
    with pytest.raises(CxrkitError):
        read_xray(tmp_path / "x.png")
    with pytest.raises(ValueError):
        read_xray(tmp_path / "x.png")


# -- resizing -------------------------------------------------------------------
def test_resize_interpolations() -> None:
    img = np.zeros((8, 8), np.float32)
    img[:, 4:] = 1.0
    near = resize_image(img, 16, "nearest")
    assert set(np.unique(near)) == {0.0, 1.0}
    bil = resize_image(img, 16, "bilinear")
    assert 0 < bil[0, 7] < 1  # blended at the edge
    assert resize_image(img, 4, "bilinear").shape == (4, 4)
    with pytest.raises(ValueError, match=r"^The 'interpolation' parameter must be one of"):
        resize_image(img, 4, "cubic")


def test_real_cxr_dev_image(shared_data: Path) -> None:
    img = read_xray(shared_data / "cxr-dev" / "images" / "ieee8023__00870a9c.png")
    assert img.shape == (256, 256) and img.dtype == np.float32
    assert 0 <= img.min() < img.max() <= 1


def _deflated(path: Path, pixels: np.ndarray) -> Path:
    import pydicom
    from pydicom.uid import DeflatedExplicitVRLittleEndian

    ds = pydicom.dcmread(_dicom(path, pixels))
    ds.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    ds.save_as(str(path), enforce_file_format=True)
    return path


def test_dicom_pixel_limit_applies_to_the_header_before_decoding(
    tmp_path: Path, monkeypatch
) -> None:
    # A header that declares 30000x30000 pixels (the pixel data itself is small).
    path = _dicom(tmp_path / "lie.dcm", np.zeros((64, 64)), Rows=30000, Columns=30000)
    with pytest.raises(
        ImageDecodeError,
        match=r"'.*lie.dcm' was refused as a possible "
        r"decompression bomb \(its header declares 30000x30000 pixels x 1 "
        r"frame\(s\) x 1 sample\(s\) = 900000000, more than the limit of ",
    ):
        read_xray(path)
    px = (np.arange(2000 * 2000).reshape(2000, 2000) % 4096).astype(np.uint16)
    big = _deflated(tmp_path / "big.dcm", px)
    assert big.stat().st_size < 200_000  # deflated: small on disk, 8 MB inflated
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 3_000_000)  # bound 13 MB: header check
    with pytest.raises(ImageDecodeError, match=r"header declares 2000x2000 pixels"):
        read_xray(big)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1_000_000)  # bound 5 MB: never inflated
    with pytest.raises(
        ImageDecodeError,
        match=r"its deflated data set inflates to more than "
        r"5048576 bytes, more than the limit of 1000000",
    ):
        read_xray(big)
    small = _deflated(tmp_path / "small.dcm", px[:32, :32])
    np.testing.assert_allclose(read_xray(small), px[:32, :32] / 4095.0, atol=1e-6)
