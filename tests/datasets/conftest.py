"""Fixtures for dataset tests: tiny image writers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def write_png(path: Path, seed: int = 0, size: int = 16) -> Path:
    """A small non-constant grayscale PNG."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 255, (size, size), dtype=np.uint8)).save(path)
    return path


import pytest  # noqa: E402


@pytest.fixture(scope="session")
def png() -> object:
    """The :func:`write_png` helper."""
    return write_png


def write_dicom(path: Path, seed: int = 0, size: int = 16, **tags: object) -> Path:
    """A small 12-bit MONOCHROME2 DICOM with the given header tags."""
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

    path.parent.mkdir(parents=True, exist_ok=True)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "CR"
    ds.Rows = ds.Columns = size
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    for k, v in tags.items():
        setattr(ds, k, v)
    rng = np.random.default_rng(seed)
    ds.PixelData = rng.integers(0, 4096, (size, size)).astype(np.uint16).tobytes()
    ds.save_as(str(path), enforce_file_format=True)
    return path


@pytest.fixture(scope="session")
def public_metadata(shared_data: Path) -> Path:
    """``shared/data/public-metadata`` (the real label files of five public datasets)."""
    path = shared_data / "public-metadata"
    if not path.is_dir():
        pytest.skip(f"public metadata files not available in {shared_data}")
    return path


@pytest.fixture(scope="session")
def dicom() -> object:
    """The :func:`write_dicom` helper."""
    return write_dicom
