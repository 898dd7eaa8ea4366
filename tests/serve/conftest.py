"""Fixtures of the serve tests: a tiny saved model, images as bytes, a test client."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ..conftest import make_separable

#: Reason of the skips where the ``serve`` extra is missing.
NO_SERVE_EXTRA = "the serve extra is not installed: pip install 'cxrkit[serve]'"


@pytest.fixture(scope="session")
def training_images() -> tuple[np.ndarray, np.ndarray]:
    return make_separable(40, 32, seed=0)


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory, training_images) -> Path:
    """A tiny fitted model saved with cxrkit.save_model."""
    from cxrkit import CXRClassifier, save_model

    X, y = training_images
    clf = CXRClassifier("tiny_cnn", input_size=32, max_epochs=1, device="cpu", random_state=0)
    return save_model(clf.fit(X, y), tmp_path_factory.mktemp("model") / "tiny")


def png_bytes(img: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG")
    return buf.getvalue()


def jpeg_bytes(img: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="JPEG", quality=95)
    return buf.getvalue()


def dicom_bytes(img: np.ndarray, *, pixels: bool = True, **attrs: object) -> bytes:
    """A single-frame secondary-capture DICOM of a uint8/uint16 image, with ``attrs``."""
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset("x.dcm", {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "DX"
    bits = 16 if img.dtype == np.uint16 else 8
    ds.Rows, ds.Columns = img.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = bits
    ds.BitsStored = int(attrs.pop("BitsStored", bits))
    ds.HighBit = ds.BitsStored - 1
    ds.PixelRepresentation = 0
    for key, value in attrs.items():
        setattr(ds, key, value)
    if pixels:
        ds.PixelData = np.ascontiguousarray(img).tobytes()
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


@pytest.fixture
def make_client(model_dir: Path):
    """``make_client(**ServeConfig fields)``: a TestClient with the app's lifespan running."""
    from fastapi.testclient import TestClient

    from cxrkit.serve import ServeConfig, ServedModel, create_app

    clients = []

    def make(served: ServedModel | None = None, **config: object) -> TestClient:
        served = served or ServedModel.from_directory(model_dir, device="cpu")
        client = TestClient(create_app(served, ServeConfig(**config)))
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def client(make_client):
    return make_client()
