"""Image decoding and resizing.

Every image becomes a 2-D ``float32`` array with values in ``[0, 1]``, whatever
its file format:

* **8-bit** images are divided by 255, **16-bit** images by 65535 (32-bit
  integer images whose values fit in 16 bits likewise; wider ones are scaled by
  their own maximum).
* **Colour** images are converted to grayscale one way only, with the ITU-R
  601-2 luma transform that Pillow's ``convert("L")`` applies:
  ``L = 0.299 R + 0.587 G + 0.114 B``. Palette (``P``), CMYK and YCbCr images are
  first converted to RGB by Pillow; an alpha channel (``RGBA``, ``LA``, ``PA``) is
  **ignored** (dropped), never composited. Bilevel (``1``) images become 0/1.
* The EXIF orientation of JPEGs is applied.
* **DICOM** files (``.dcm``/``.dicom`` or the ``DICM`` magic at byte 128) are read
  with pydicom: the modality LUT (rescale slope/intercept) is applied, then the
  VOI LUT or the first window (centre/width, LINEAR or SIGMOID), the result is
  scaled to ``[0, 1]`` using the range the bit depth allows (``BitsStored``),
  and ``MONOCHROME1`` images are inverted so that bone is bright in every image.
  The pixel limit of other images (Pillow's ``MAX_IMAGE_PIXELS``) applies to the
  pixels the header declares (``Rows`` x ``Columns`` x ``NumberOfFrames`` x
  ``SamplesPerPixel``) before anything is decoded, and a deflated data set that
  would inflate beyond 4 bytes per allowed pixel is refused before it is inflated.

Bad files raise :class:`~cxrkit.errors.ImageDecodeError` with the reason: a missing
file, a zero-byte file, a file that is not an image (e.g. text named ``.png``), a
truncated PNG/JPEG, a decompression bomb (Pillow's ``MAX_IMAGE_PIXELS`` guard;
Pillow's warning level is treated as an error too), an image smaller than
:data:`MIN_SIDE` pixels on a side (e.g. 1x1), and an image with one constant value
everywhere (it carries no picture: usually a blank export or a placeholder).
"""

from __future__ import annotations

import io
import os
import warnings
import zlib
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError
from scipy.special import expit

from ..errors import ImageDecodeError

__all__ = [
    "read_xray",
    "read_xray_bytes",
    "describe_content",
    "resize_image",
    "INTERPOLATIONS",
    "MIN_SIDE",
    "DICOM_SUFFIXES",
]

INTERPOLATIONS = {
    "nearest": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
}

#: Smallest accepted side of an image, in pixels.
MIN_SIDE = 8

DICOM_SUFFIXES = (".dcm", ".dicom")


def _pil_to_gray(img: Image.Image) -> np.ndarray:
    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N"):
        arr = np.asarray(img).astype(np.float64)
        return (arr / 65535.0).clip(0, 1).astype(np.float32)
    if mode == "I":
        arr = np.asarray(img, dtype=np.float64)
        lo, hi = float(arr.min()), float(arr.max())
        if lo >= 0 and hi <= 65535:
            return (arr / 65535.0).astype(np.float32)
        return ((arr - lo) / (hi - lo if hi > lo else 1.0)).astype(np.float32)
    if mode == "F":
        arr = np.asarray(img, dtype=np.float32)
        lo, hi = float(np.nanmin(arr)), float(np.nanmax(arr))
        if lo >= 0 and hi <= 1:
            return arr
        return ((arr - lo) / (hi - lo if hi > lo else 1.0)).astype(np.float32)
    if mode == "1":
        return np.asarray(img.convert("L"), dtype=np.float32) / 255.0
    if mode in ("LA", "La"):
        img = img.getchannel(0)
    elif mode == "PA":
        img = img.convert("RGBA")
    if img.mode != "L":
        img = img.convert("RGB").convert("L")  # alpha dropped, ITU-R 601-2 luma
    return np.asarray(img, dtype=np.float32) / 255.0


def _is_dicom(data: bytes, name: str) -> bool:
    return name.lower().endswith(DICOM_SUFFIXES) or data[128:132] == b"DICM"


def _looks_like_text(data: bytes) -> bool:
    head = data[:512]
    if not head:
        return False
    printable = sum(32 <= b < 127 or b in (9, 10, 13) for b in head)
    return printable / len(head) > 0.95


_DEFLATED = b"1.2.840.10008.1.2.1.99"


def _pixel_limit() -> int | None:
    """Pillow's ``MAX_IMAGE_PIXELS`` (read at call time; ``None``: no limit)."""
    limit = Image.MAX_IMAGE_PIXELS
    return int(limit) if limit else None


def _bomb(name: str, what: str, limit: int) -> ImageDecodeError:
    return ImageDecodeError(
        f"Image '{name}' was refused as a possible decompression bomb ({what}, more than the "
        f"limit of {limit} pixels). If the image is genuine, raise PIL.Image.MAX_IMAGE_PIXELS "
        "before reading it."
    )


def _check_inflated_size(data: bytes, name: str) -> None:
    """Refuse a deflated DICOM whose data set inflates beyond what the pixel limit allows (4 bytes a pixel), without holding the inflated bytes.

    pydicom inflates a whole ``Deflated Explicit VR Little Endian`` data set in
    memory before reading a single header field, so this runs first.
    """
    limit = _pixel_limit()
    if limit is None or _DEFLATED not in data[128:2048] or data[128:132] != b"DICM":
        return
    # The file meta group is never deflated; its first element (0002,0000) UL gives its length.
    if data[132:136] != b"\x02\x00\x00\x00" or data[136:138] != b"UL":
        return  # unusual meta group: pydicom's own reading decides
    start = 144 + int.from_bytes(data[140:144], "little")
    bound = 4 * limit + (1 << 20)
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    total = 0
    chunk = data[start:]
    try:
        while chunk and total <= bound and not inflater.eof:  # bytes after the end: padding
            out = len(inflater.decompress(chunk, 1 << 20))
            if out == 0 and inflater.unconsumed_tail == chunk:
                break  # no progress: a damaged stream, reported by the decoder
            total += out
            chunk = inflater.unconsumed_tail
    except zlib.error:
        return  # damaged stream: reported by the decoder
    if total > bound:
        raise _bomb(name, f"its deflated data set inflates to more than {bound} bytes", limit)


def _check_dicom_pixels(ds: Any, name: str) -> None:
    """Refuse a DICOM whose header declares more pixels than the limit, before decoding."""
    limit = _pixel_limit()
    if limit is None:
        return
    dims = {}
    for key in ("Rows", "Columns", "NumberOfFrames", "SamplesPerPixel"):
        try:
            dims[key] = max(int(ds.get(key, 1) or 1), 1)
        except (TypeError, ValueError):
            dims[key] = 1
    pixels = dims["Rows"] * dims["Columns"] * dims["NumberOfFrames"] * dims["SamplesPerPixel"]
    if pixels > limit:
        raise _bomb(
            name,
            f"its header declares {dims['Columns']}x{dims['Rows']} pixels x "
            f"{dims['NumberOfFrames']} frame(s) x {dims['SamplesPerPixel']} "
            f"sample(s) = {pixels}",
            limit,
        )


def describe_content(data: bytes) -> str:
    """Return the detected type of a file's content, for messages (never the content itself)."""
    import puremagic

    try:
        match = puremagic.magic_string(data[:4096])
    except (puremagic.PureError, ValueError):
        match = []
    if match:
        kind = match[0].name or match[0].extension
        return f"a file of another type ({kind}), not an image format Pillow recognises"
    if _looks_like_text(data):
        return "a text file"
    return "binary data of no known type, not an image format Pillow recognises"


def _decode_dicom(data: bytes, name: str) -> np.ndarray:
    try:
        import pydicom
        from pydicom.pixels import apply_modality_lut, apply_voi_lut
    except ImportError as exc:  # pragma: no cover - pydicom is a dependency
        raise ImageDecodeError(
            f"Image '{name}' is DICOM but pydicom is not installed ({exc})."
        ) from None
    _check_inflated_size(data, name)
    try:
        ds = pydicom.dcmread(io.BytesIO(data), force=True)
        _check_dicom_pixels(ds, name)
        raw = ds.pixel_array
    except ImageDecodeError:
        raise
    except Exception as exc:
        raise ImageDecodeError(
            f"Image '{name}' could not be decoded as DICOM ({type(exc).__name__}: {exc}). "
            "Check that the file is complete and that its transfer syntax is supported "
            "(compressed DICOM may need pylibjpeg or gdcm)."
        ) from None
    frames = int(getattr(ds, "NumberOfFrames", 1) or 1)
    if frames > 1:
        raise ImageDecodeError(
            f"Image '{name}' is a DICOM with {frames} frames; cxrkit reads single-frame "
            "radiographs. Export the frame you need as its own file."
        )
    photometric = str(getattr(ds, "PhotometricInterpretation", "MONOCHROME2")).upper()
    if raw.ndim == 3:  # colour DICOM: same luma transform as other images
        rgb = raw.astype(np.float64)
        bits = int(getattr(ds, "BitsStored", 8) or 8)
        gray = rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114
        return (gray / (2.0**bits - 1)).clip(0, 1).astype(np.float32)
    bits = int(getattr(ds, "BitsStored", 16) or 16)
    signed = int(getattr(ds, "PixelRepresentation", 0) or 0) == 1
    lo_raw = -(2.0 ** (bits - 1)) if signed else 0.0
    hi_raw = 2.0 ** (bits - 1) - 1 if signed else 2.0**bits - 1
    arr = raw.astype(np.float64)
    slope = float(getattr(ds, "RescaleSlope", 1) or 1)
    intercept = float(getattr(ds, "RescaleIntercept", 0) or 0)
    has_modality_lut = "ModalityLUTSequence" in ds
    arr = np.asarray(apply_modality_lut(arr, ds), dtype=np.float64)
    if has_modality_lut:
        lo, hi = float(arr.min()), float(arr.max())
    else:
        lo, hi = sorted((lo_raw * slope + intercept, hi_raw * slope + intercept))
    if "VOILUTSequence" in ds:
        item = ds.VOILUTSequence[0]
        desc = item.LUTDescriptor
        out_bits = int(desc[2]) if len(desc) > 2 else 16
        arr = np.asarray(apply_voi_lut(raw, ds, index=0), dtype=np.float64)
        out = arr / (2.0**out_bits - 1)
    elif "WindowCenter" in ds and "WindowWidth" in ds:
        centre = ds.WindowCenter
        width = ds.WindowWidth
        centre = float(centre[0] if isinstance(centre, pydicom.multival.MultiValue) else centre)
        width = float(width[0] if isinstance(width, pydicom.multival.MultiValue) else width)
        width = max(width, 1.0)
        func = str(getattr(ds, "VOILUTFunction", "LINEAR") or "LINEAR").upper()
        if func == "SIGMOID":
            out = expit(4.0 * (arr - centre) / width)
        elif func == "LINEAR_EXACT":
            out = (arr - centre) / width + 0.5
        else:  # LINEAR, DICOM PS3.3 C.11.2.1.2.1
            out = (arr - (centre - 0.5)) / (width - 1 if width > 1 else 1) + 0.5
    else:
        out = (arr - lo) / (hi - lo if hi > lo else 1.0)
    out = np.clip(out, 0.0, 1.0)
    if photometric == "MONOCHROME1":
        out = 1.0 - out
    return out.astype(np.float32)


def _decode_pil(data: bytes, name: str) -> np.ndarray:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as img:
                fmt = img.format
                img.load()
                upright = ImageOps.exif_transpose(img) if fmt == "JPEG" else img
                return _pil_to_gray(upright)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageDecodeError(
            f"Image '{name}' was refused as a possible decompression bomb ({exc}). If the "
            "image is genuine, raise PIL.Image.MAX_IMAGE_PIXELS before reading it."
        ) from None
    except UnidentifiedImageError:
        raise ImageDecodeError(
            f"Image '{name}' is not an image: its content is {describe_content(data)}. "
            "Remove it or replace it with the real image."
        ) from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        msg = str(exc)
        reason = (
            "truncated file"
            if ("truncated" in msg or "EOF" in msg or isinstance(exc, EOFError))
            else f"{type(exc).__name__}: {msg}"
        )
        raise ImageDecodeError(
            f"Image '{name}' could not be decoded ({reason}). The file is damaged or incomplete; "
            "download it again or remove it."
        ) from None


def read_xray_bytes(data: bytes, name: str = "<bytes>", *, constant: str = "error") -> np.ndarray:
    """Decode the bytes of an image file; see :func:`read_xray`.

    Parameters
    ----------
    data : bytes
        The whole file.
    name : str, default="<bytes>"
        Used in error messages.
    constant : {"error", "warn", "ignore"}, default="error"
        What to do with an image that holds one value everywhere.
    """
    if len(data) == 0:
        raise ImageDecodeError(
            f"Image '{name}' is empty (0 bytes). The download or copy was probably interrupted; "
            "fetch the file again or remove it."
        )
    img = _decode_dicom(data, name) if _is_dicom(data, name) else _decode_pil(data, name)
    if img.ndim != 2:
        raise ImageDecodeError(f"Image '{name}' decoded to shape {img.shape}; expected 2-D.")
    if min(img.shape) < MIN_SIDE:
        raise ImageDecodeError(
            f"Image '{name}' is {img.shape[1]}x{img.shape[0]} pixels; images must be at least "
            f"{MIN_SIDE}x{MIN_SIDE}. It is probably a placeholder or thumbnail; remove it."
        )
    if not np.isfinite(img).all():
        raise ImageDecodeError(f"Image '{name}' contains NaN or infinite pixel values.")
    if constant != "ignore" and float(img.max()) == float(img.min()):
        msg = (
            f"Image '{name}' has the same value ({float(img.flat[0]):.3f}) in every pixel, so it "
            "carries no picture (a blank export or placeholder). Remove it."
        )
        if constant == "error":
            raise ImageDecodeError(msg)
        warnings.warn(msg, UserWarning, stacklevel=3)
    return img


def read_xray(path: str | os.PathLike[str], *, constant: str = "error") -> np.ndarray:
    """Read an image file as a 2-D float32 array in ``[0, 1]``.

    PNG, JPEG, TIFF, BMP (8 and 16 bit; colour converted to grayscale with the
    ITU-R 601-2 luma transform, alpha ignored) and DICOM are read; see the module
    documentation for the exact conversions.

    Parameters
    ----------
    path : str or path-like
        The image file.
    constant : {"error", "warn", "ignore"}, default="error"
        An image with the same value in every pixel is an error by default
        (it carries no picture); ``"warn"`` returns it with a warning.

    Returns
    -------
    ndarray of shape (H, W), float32, values in [0, 1]

    Raises
    ------
    ImageDecodeError
        The file is missing, empty, not an image, truncated, a decompression
        bomb, smaller than :data:`MIN_SIDE` pixels on a side, or constant.
    """
    p = Path(path)
    if not p.exists():
        raise ImageDecodeError(
            f"Image '{p}' does not exist. Check the path (relative paths are resolved against "
            f"the current directory, {os.getcwd()!r})."
        )
    if not p.is_file():
        raise ImageDecodeError(f"Image '{p}' is not a file (it is a directory or a special file).")
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise ImageDecodeError(f"Image '{p}' could not be read ({exc.strerror or exc}).") from None
    return read_xray_bytes(data, str(p), constant=constant)


def resize_image(img: np.ndarray, size: int, interpolation: str = "bilinear") -> np.ndarray:
    """Resize a 2-D float image to ``size x size`` with Pillow.

    Parameters
    ----------
    img : ndarray of shape (H, W)
    size : int
        Side of the square output (the aspect ratio is not kept; crop first
        if it matters).
    interpolation : {"nearest", "bilinear", "bicubic", "lanczos"}, default="bilinear"
        Pillow's resampling filter. ``"nearest"`` copies the nearest pixel (no
        antialiasing; the first paper's small CNN used it at 100 px);
        ``"bilinear"``, ``"bicubic"`` and ``"lanczos"`` are antialiased when
        shrinking (Pillow widens the filter support by the scale factor), which
        matches torchvision's ``Resize(antialias=True)`` used for the 224 px
        ImageNet backbones.

    Returns
    -------
    ndarray of shape (size, size), float32
    """
    try:
        method = INTERPOLATIONS[interpolation]
    except KeyError:
        raise ValueError(
            f"The 'interpolation' parameter must be one of {sorted(INTERPOLATIONS)}. "
            f"Got {interpolation!r} instead."
        ) from None
    if img.shape == (size, size):
        return img.astype(np.float32, copy=False)
    pil = Image.fromarray(np.ascontiguousarray(img, dtype=np.float32), mode="F")
    return np.asarray(pil.resize((size, size), method), dtype=np.float32)
