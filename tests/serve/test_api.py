"""The JSON API: every endpoint, answers equal to offline prediction, token and CORS."""

from __future__ import annotations

import base64
import io
import json

import numpy as np
import pytest
from PIL import Image

from cxrkit import load_model
from cxrkit.serve import OODReference, ServedModel, fit_ood_reference

from .conftest import NO_SERVE_EXTRA, dicom_bytes, jpeg_bytes, png_bytes

pytest.importorskip("fastapi", reason=NO_SERVE_EXTRA)


def _files(*items: tuple[str, bytes]) -> list[tuple[str, tuple[str, bytes, str]]]:
    return [("files", (name, data, "application/octet-stream")) for name, data in items]


def test_healthz_and_model_card(client, model_dir):
    health = client.get("/healthz")
    assert health.status_code == 200 and health.json()["status"] == "ok"
    info = client.get("/v1/model").json()
    assert info["name"] == "tiny" and info["classes"] == ["neg", "pos"]
    assert info["architecture"] == "tiny_cnn" and info["preprocessing"]["input_size"] == 32
    assert info["cxrkit_version"] and info["operating_point"] is None
    assert info["accepted_types"] == ["application/dicom", "image/jpeg", "image/png"]
    assert info["server"]["max_upload_bytes"] == 50 * 2**20
    assert info["server"]["token_required"] is False


def test_openapi_docs(client):
    schema = client.get("/openapi.json").json()
    assert {"/v1/predict", "/v1/model", "/healthz"} <= set(schema["paths"])
    assert "multipart/form-data" in schema["paths"]["/v1/predict"]["post"]["requestBody"]["content"]
    assert client.get("/docs").status_code == 200


def test_predict_matches_offline_predict_proba(client, model_dir, training_images, tmp_path):
    X, _ = training_images
    paths = []
    files = []
    for i, (maker, ext) in enumerate([(png_bytes, "png"), (jpeg_bytes, "jpg"), (png_bytes, "png")]):
        data = maker(X[i])
        (tmp_path / f"im{i}.{ext}").write_bytes(data)
        paths.append(str(tmp_path / f"im{i}.{ext}"))
        files.append((f"im{i}.{ext}", data))
    offline = load_model(model_dir, device="cpu").predict_proba(np.asarray(paths, dtype=object))
    response = client.post("/v1/predict", files=_files(*files))
    assert response.status_code == 200
    results = response.json()["results"]
    assert [r["filename"] for r in results] == ["im0.png", "im1.jpg", "im2.png"]
    assert [r["type"] for r in results] == ["png", "jpeg", "png"]
    got = np.array([[r["probabilities"]["neg"], r["probabilities"]["pos"]] for r in results])
    np.testing.assert_allclose(got, offline, rtol=0, atol=1e-6)
    assert [r["prediction"] for r in results] == [["neg", "pos"][int(p.argmax())] for p in offline]
    assert all(
        r["decision"] is None and r["gradcam"] is None and r["warnings"] == [] for r in results
    )


def test_gradcam_and_preview_are_png_data_urls(client, training_images):
    X, _ = training_images
    response = client.post(
        "/v1/predict?gradcam=true&preview=true", files=_files(("a.png", png_bytes(X[1])))
    )
    result = response.json()["results"][0]
    for key, side in (("gradcam", 256), ("preview", 32)):
        head, _, data = result[key].partition(",")
        assert head == "data:image/png;base64"
        img = Image.open(io.BytesIO(base64.b64decode(data)))
        assert img.format == "PNG" and img.size == (side, side)


def test_operating_point_decision(make_client, model_dir, training_images, tmp_path):
    import shutil

    folder = tmp_path / "with-op"
    shutil.copytree(model_dir, folder)
    (folder / "operating_point.json").write_text(
        json.dumps({"threshold": 0.2, "name": "sensitivity 0.95"})
    )
    client = make_client(ServedModel.from_directory(folder, device="cpu"))
    X, _ = training_images
    result = client.post("/v1/predict", files=_files(("a.png", png_bytes(X[0])))).json()
    r = result["results"][0]
    expected = "pos" if r["probabilities"]["pos"] >= 0.2 else "neg"
    assert r["decision"] == {"label": expected, "threshold": 0.2, "name": "sensitivity 0.95"}
    assert client.get("/v1/model").json()["operating_point"]["threshold"] == 0.2
    low = make_client(ServedModel.from_directory(folder, device="cpu", threshold=1e-6))
    r = low.post("/v1/predict", files=_files(("a.png", png_bytes(X[0])))).json()["results"][0]
    assert r["decision"]["label"] == "pos" and r["decision"]["threshold"] == 1e-6


def test_dicom_warnings(client, training_images):
    X, _ = training_images
    img16 = X[0].astype(np.uint16) * 16
    data = dicom_bytes(
        img16,
        BitsStored=12,
        PhotometricInterpretation="MONOCHROME1",
        ViewPosition="LL",
        PatientAge="010Y",
        WindowCenter=2048,
        WindowWidth=4096,
    )
    r = client.post("/v1/predict", files=_files(("lat.dcm", data))).json()["results"][0]
    assert r["type"] == "dicom"
    codes = [w["code"] for w in r["warnings"]]
    assert codes == ["lateral_view", "paediatric", "monochrome1_inverted", "windowed_16bit"]
    assert "'LL'" in r["warnings"][0]["message"] and "010Y" in r["warnings"][1]["message"]
    adult = dicom_bytes(X[0], ViewPosition="PA", PatientAge="045Y")
    r = client.post("/v1/predict", files=_files(("pa.dcm", adult))).json()["results"][0]
    assert r["warnings"] == []


def test_small_and_16bit_png_warnings(client, training_images):
    X, _ = training_images
    small = np.asarray(Image.fromarray(X[0]).resize((16, 16)))
    wide = X[1].astype(np.uint16) * 257
    results = client.post(
        "/v1/predict", files=_files(("small.png", png_bytes(small)), ("wide.png", png_bytes(wide)))
    ).json()
    assert [w["code"] for w in results["results"][0]["warnings"]] == ["small_image"]
    assert "16x16" in results["results"][0]["warnings"][0]["message"]
    assert [w["code"] for w in results["results"][1]["warnings"]] == ["bit_depth_16"]


def test_out_of_distribution_flag(make_client, model_dir, training_images, tmp_path):
    import shutil

    X, _ = training_images
    folder = tmp_path / "with-ood"
    shutil.copytree(model_dir, folder)
    served = ServedModel.from_directory(folder, device="cpu")
    ref = fit_ood_reference(served, X, save=True)
    loaded = OODReference.load(folder)
    assert loaded is not None and loaded.threshold == pytest.approx(ref.threshold)
    assert (ref.n_fit, ref.n_calibration) == (32, 8)
    client = make_client(ServedModel.from_directory(folder, device="cpu"))
    assert client.get("/v1/model").json()["ood_reference"]["n_fit"] == 32
    rng = np.random.default_rng(1)
    noise = rng.integers(0, 256, (32, 32), dtype=np.uint8)
    results = client.post(
        "/v1/predict", files=_files(("train.png", png_bytes(X[3])), ("noise.png", png_bytes(noise)))
    ).json()
    for r in results["results"]:
        ood = r["ood"]
        assert ood["threshold"] == pytest.approx(ref.threshold)
        assert ood["flag"] == (ood["distance"] > ood["threshold"])
        assert ("out_of_distribution" in [w["code"] for w in r["warnings"]]) == ood["flag"]
    train, noise_r = results["results"]
    assert train["ood"]["distance"] < noise_r["ood"]["distance"]
    # A reference whose threshold every image passes flags them all.
    served = ServedModel.from_directory(folder, device="cpu")
    served.ood.threshold = 0.0
    strict = make_client(served)
    r = strict.post("/v1/predict", files=_files(("a.png", png_bytes(X[3])))).json()["results"][0]
    assert r["ood"]["flag"] and r["warnings"][-1]["code"] == "out_of_distribution"


def test_token_checked_on_every_api_call(make_client, training_images):
    X, _ = training_images
    client = make_client(token="s3cret")
    files = _files(("a.png", png_bytes(X[0])))
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic s3cret"}):
        assert client.get("/v1/model", headers=headers).status_code == 401
        response = client.post("/v1/predict", files=files, headers=headers)
        assert response.status_code == 401
        assert "Authorization: Bearer" in response.json()["detail"]
    good = {"Authorization": "Bearer s3cret"}
    assert client.get("/v1/model", headers=good).json()["server"]["token_required"] is True
    assert client.post("/v1/predict", files=files, headers=good).status_code == 200
    assert client.get("/healthz").status_code == 200
    assert client.get("/").status_code == 200


def test_cors_off_by_default_and_opt_in(make_client):
    origin = {"Origin": "https://elsewhere.example"}
    preflight = {**origin, "Access-Control-Request-Method": "POST"}
    client = make_client()
    assert "access-control-allow-origin" not in client.get("/v1/model", headers=origin).headers
    assert (
        "access-control-allow-origin"
        not in client.options("/v1/predict", headers=preflight).headers
    )
    allowed = make_client(cors_origins=("https://elsewhere.example",))
    response = allowed.get("/v1/model", headers=origin)
    assert response.headers["access-control-allow-origin"] == "https://elsewhere.example"


def test_page_is_offline_and_escapes(client):
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    csp = page.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "script-src 'self'" in csp and "unsafe" not in csp
    html = page.text
    assert 'src="/static/app.js"' in html and "http://" not in html and "https://" not in html
    js = client.get("/static/app.js")
    assert js.status_code == 200 and js.headers["content-type"].startswith("text/javascript")
    assert "innerHTML" not in js.text and "insertAdjacentHTML" not in js.text
    assert "http" not in js.text.replace("http-equiv", "")
    assert client.get("/static/app.css").status_code == 200
