"""Decoding an upload and the input warnings a radiologist should see beside the result.

The pixels come from :func:`cxrkit.io.read_xray_bytes`, exactly as offline
prediction reads files. The warnings come from the DICOM header and the image
itself:

``small_image``
    The image is smaller than the network's input, so it was upsampled.
``lateral_view``
    DICOM ``ViewPosition`` is a lateral view; the models are trained on frontal films.
``paediatric``
    DICOM ``PatientAge`` is under 18 (:data:`cxrkit.validity.confounding.PEDIATRIC_AGE`).
``monochrome1_inverted``
    DICOM ``PhotometricInterpretation`` is MONOCHROME1; the image was inverted.
``windowed_16bit``
    A DICOM with more than 8 stored bits was windowed (VOI LUT or centre/width).
``bit_depth_16``
    A 16-bit PNG was scaled linearly from its full 16-bit range (no window).
``out_of_distribution``
    Added by the server when an :class:`~cxrkit.serve.OODReference` is loaded.
"""

from __future__ import annotations

import io
import re
from typing import Any

import numpy as np

from ..errors import ImageDecodeError
from ..io import read_xray_bytes
from ..validity.confounding import PEDIATRIC_AGE
from ._uploads import ACCEPTED_TYPES, Upload, UploadRejected, check_pixel_count, sniff_type

__all__ = ["decode_upload", "dicom_warnings", "LATERAL_VIEWS"]

#: DICOM ViewPosition values of lateral views (PS3.3 C.8.11.5 defined terms).
LATERAL_VIEWS = ("LL", "RL", "LAT", "LATERAL", "LLD", "RLD")
_AGE = re.compile(r"^\s*(\d{1,3})\s*([DWMY]?)\s*$", re.IGNORECASE)
_PER_YEAR = {"D": 365.25, "W": 52.18, "M": 12.0, "Y": 1.0, "": 1.0}


def _warning(code: str, message: str) -> dict[str, str]:
    return {"code": code, "message": message}


def patient_age_years(value: Any) -> float | None:
    """Years from a DICOM age string (``"045Y"``, ``"006M"``, ``"010D"``); ``None`` if unreadable."""
    match = _AGE.match(str(value or ""))
    if match is None:
        return None
    return int(match.group(1)) / _PER_YEAR[match.group(2).upper()]


def dicom_warnings(ds: Any) -> list[dict[str, str]]:
    """Warnings from a DICOM header (a :class:`pydicom.Dataset`)."""
    out = []
    view = str(getattr(ds, "ViewPosition", "") or "").strip().upper()
    if view in LATERAL_VIEWS:
        out.append(
            _warning(
                "lateral_view",
                f"DICOM ViewPosition is {view!r}, a lateral view; "
                "the model was trained for frontal (PA/AP) radiographs.",
            )
        )
    age = patient_age_years(getattr(ds, "PatientAge", None))
    if age is not None and age < PEDIATRIC_AGE:
        out.append(
            _warning(
                "paediatric",
                f"DICOM PatientAge is {ds.PatientAge!s} "
                f"({age:.1f} years), under {PEDIATRIC_AGE}; paediatric chest films "
                "differ from adult ones and are a known shortcut for some labels.",
            )
        )
    photometric = str(getattr(ds, "PhotometricInterpretation", "") or "").upper()
    if photometric == "MONOCHROME1":
        out.append(
            _warning(
                "monochrome1_inverted",
                "The DICOM is MONOCHROME1 (white is zero); "
                "it was inverted so that bone is bright, as in the training images.",
            )
        )
    bits = int(getattr(ds, "BitsStored", 8) or 8)
    if bits > 8:
        if "VOILUTSequence" in ds:
            how = "its VOI LUT"
        elif "WindowCenter" in ds and "WindowWidth" in ds:
            how = f"window centre {ds.WindowCenter} / width {ds.WindowWidth}"
        else:
            how = None
        if how:
            out.append(
                _warning(
                    "windowed_16bit",
                    f"The DICOM stores {bits} bits per pixel and "
                    f"was windowed with {how}; detail outside the window is lost.",
                )
            )
    return out


def _inspect_dicom(upload: Upload) -> None:
    import pydicom

    try:
        ds = pydicom.dcmread(io.BytesIO(upload.data), force=True, stop_before_pixels=False)
    except Exception as exc:  # noqa: BLE001 - pydicom names the fault
        raise UploadRejected(
            f"Upload '{upload.filename}' is not a readable DICOM ({type(exc).__name__}: {exc}).",
            422,
        ) from None
    if not any(tag in ds for tag in ("PixelData", "FloatPixelData", "DoubleFloatPixelData")):
        raise UploadRejected(
            f"Upload '{upload.filename}' is a DICOM without pixel data (a structured report, "
            "presentation state or header-only export); upload the image object itself.",
            422,
        )
    upload.warnings.extend(dicom_warnings(ds))


def decode_upload(upload: Upload, input_size: int, *, max_pixels: int) -> np.ndarray:
    """Refuse hostile input, decode the image and fill ``upload.warnings``.

    Parameters
    ----------
    upload : Upload
        The file; ``kind`` and ``warnings`` are set here.
    input_size : int
        The network's input side; smaller images get the ``small_image`` warning.
    max_pixels : int
        Largest accepted image, in pixels (see :func:`check_pixel_count`).

    Returns
    -------
    ndarray of shape (H, W), float32 in [0, 1]

    Raises
    ------
    UploadRejected
        415 for a type other than PNG, JPEG or DICOM; 422 for a decompression bomb,
        a truncated or undecodable file and a DICOM without pixel data.
    """
    kind = sniff_type(upload.data)
    if kind is None:
        head = upload.data[:8]
        raise UploadRejected(
            f"Upload '{upload.filename}' is not a PNG, JPEG or DICOM file (first bytes "
            f"{head!r}). Accepted types: {', '.join(ACCEPTED_TYPES.values())}.",
            415,
        )
    upload.kind = kind
    if kind == "dicom":
        _inspect_dicom(upload)
    else:
        mode = check_pixel_count(upload, max_pixels)
        if mode.startswith("I;16") or mode == "I":
            upload.warnings.append(
                _warning(
                    "bit_depth_16",
                    "The image has 16 bits per pixel and was scaled linearly from "
                    "the full 16-bit range without a window; check that it is not too dark.",
                )
            )
    try:
        img = read_xray_bytes(upload.data, upload.filename)
    except ImageDecodeError as exc:
        raise UploadRejected(str(exc), 422) from None
    if kind == "dicom" and img.size > max_pixels:
        raise UploadRejected(
            f"Upload '{upload.filename}' has {img.size:,} pixels, more than "
            f"the server's limit of {max_pixels:,}.",
            422,
        )
    height, width = img.shape
    if min(height, width) < input_size:
        upload.warnings.append(
            _warning(
                "small_image",
                f"The image is {width}x{height} pixels, smaller than the network's "
                f"{input_size}x{input_size} input; it was upsampled, so fine detail is invented.",
            )
        )
    return img
