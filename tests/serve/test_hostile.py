"""Hostile input: size limit, unsupported types, bombs, truncation, header-only DICOM, paths."""

from __future__ import annotations

import io
import os
import tempfile

import numpy as np
import pytest
from PIL import Image

from .conftest import NO_SERVE_EXTRA, dicom_bytes, png_bytes

pytest.importorskip("fastapi", reason=NO_SERVE_EXTRA)


def _files(*items: tuple[str, bytes]) -> list[tuple[str, tuple[str, bytes, str]]]:
    return [("files", (name, data, "image/png")) for name, data in items]


def test_body_over_the_limit_is_413(make_client, training_images):
    X, _ = training_images
    client = make_client(max_upload_bytes=20_000)
    big = np.random.default_rng(0).integers(0, 256, (200, 200), dtype=np.uint8)
    response = client.post("/v1/predict", files=_files(("big.png", png_bytes(big))))
    assert response.status_code == 413
    assert "larger than the server's limit of 20,000 bytes" in response.json()["detail"]
    ok = client.post("/v1/predict", files=_files(("ok.png", png_bytes(X[0]))))
    assert ok.status_code == 200


def test_chunked_body_over_the_limit_is_413(make_client):
    client = make_client(max_upload_bytes=20_000)

    def chunks():
        for _ in range(10):
            yield b"x" * 4096

    response = client.post(
        "/v1/predict", content=chunks(), headers={"Content-Type": "multipart/form-data; boundary=b"}
    )
    assert response.status_code == 413


def test_default_limit_is_50_mb(client):
    response = client.post(
        "/v1/predict",
        content=b"",
        headers={
            "Content-Length": str(50 * 2**20 + 1),
            "Content-Type": "multipart/form-data; boundary=b",
        },
    )
    assert response.status_code == 413
    assert "52,428,800" in response.json()["detail"]


def test_too_many_files_is_413(make_client, training_images):
    X, _ = training_images
    client = make_client(max_files=2)
    data = png_bytes(X[0])
    response = client.post(
        "/v1/predict", files=_files(("a.png", data), ("b.png", data), ("c.png", data))
    )
    assert response.status_code == 413 and "at most 2" in response.json()["detail"]


@pytest.mark.parametrize(
    "name,data",
    [
        ("notes.png", b"This is a text file that pretends to be a PNG.\n" * 4),
        ("anim.gif", b"GIF89a" + b"\0" * 64),
        ("empty.png", b""),
    ],
)
def test_unsupported_type_is_415_with_accepted_types(client, name, data):
    response = client.post("/v1/predict", files=_files((name, data)))
    assert response.status_code == 415
    body = response.json()
    assert body["accepted"] == ["application/dicom", "image/jpeg", "image/png"]
    assert f"Upload '{name}' is not a PNG, JPEG or DICOM file" in body["detail"]


def test_non_multipart_body_is_415(client, training_images):
    X, _ = training_images
    response = client.post(
        "/v1/predict", content=png_bytes(X[0]), headers={"Content-Type": "image/png"}
    )
    assert response.status_code == 415
    assert "multipart/form-data" in response.json()["detail"]


def test_decompression_bomb_is_422(client):
    bomb = io.BytesIO()
    Image.new("1", (10_000, 10_000)).save(bomb, format="PNG")  # 100 Mpx in a few kB
    assert len(bomb.getvalue()) < 100_000
    response = client.post("/v1/predict", files=_files(("bomb.png", bomb.getvalue())))
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert "decompression bomb" in detail and "10000x10000 = 100,000,000 pixels" in detail


def test_pixel_limit_is_configurable(make_client, training_images):
    X, _ = training_images
    client = make_client(max_pixels=500)
    response = client.post("/v1/predict", files=_files(("a.png", png_bytes(X[0]))))
    assert response.status_code == 422 and "32x32 = 1,024 pixels" in response.json()["detail"]


def test_truncated_file_is_422(client, training_images):
    X, _ = training_images
    rng = np.random.default_rng(0)
    data = png_bytes(rng.integers(0, 256, (64, 64), dtype=np.uint8))
    response = client.post("/v1/predict", files=_files(("cut.png", data[: len(data) // 2])))
    assert response.status_code == 422
    assert "truncated" in response.json()["detail"] and "'cut.png'" in response.json()["detail"]


def test_dicom_without_pixel_data_is_422(client, training_images):
    X, _ = training_images
    data = dicom_bytes(X[0], pixels=False)
    response = client.post("/v1/predict", files=_files(("header.dcm", data)))
    assert response.status_code == 422
    assert "DICOM without pixel data" in response.json()["detail"]


def test_one_bad_file_fails_the_request_naming_it(client, training_images):
    X, _ = training_images
    response = client.post(
        "/v1/predict",
        files=_files(("good.png", png_bytes(X[0])), ("bad.png", b"not an image at all!" * 8)),
    )
    assert response.status_code == 415 and "'bad.png'" in response.json()["detail"]
    assert (
        client.post("/v1/predict", files=_files(("good.png", png_bytes(X[0])))).status_code == 200
    )


def test_no_file_is_422(client):
    response = client.post(
        "/v1/predict", data={"gradcam": "true"}, files=[("note", (None, b"hello"))]
    )
    assert response.status_code == 422 and "No file was uploaded" in response.json()["detail"]


def test_nothing_is_written_to_disk(make_client, training_images, tmp_path, monkeypatch):
    X, _ = training_images
    tmp = tmp_path / "tmp"
    work = tmp_path / "cwd"
    tmp.mkdir()
    work.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    monkeypatch.chdir(work)
    client = make_client()
    big = np.random.default_rng(0).integers(0, 256, (1400, 1400), dtype=np.uint8)
    names = ["../../escape.png", "/etc/passwd.png", "..\\win.png", "sub/dir/x.png"]
    response = client.post("/v1/predict", files=_files(*[(n, png_bytes(big)) for n in names]))
    assert response.status_code == 200
    assert [r["filename"] for r in response.json()["results"]] == names
    assert os.listdir(tmp) == [] and os.listdir(work) == []
    assert not (tmp_path / "escape.png").exists()


def test_hostile_filename_comes_back_as_data(client, training_images):
    X, _ = training_images
    name = "<img src=x onerror=alert(1)>.png"
    response = client.post("/v1/predict", files=_files((name, png_bytes(X[0]))))
    assert response.headers["content-type"] == "application/json"
    assert response.json()["results"][0]["filename"] == name
