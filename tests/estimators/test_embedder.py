"""CXREmbedder, make_linear_probe, the linear-probe-cv protocol and `cxrkit embed`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import GridSearchCV, StratifiedGroupKFold, cross_val_predict
from sklearn.pipeline import Pipeline

from cxrkit import CXREmbedder, create_protocol, load_dataset, make_linear_probe
from cxrkit.errors import ConfigurationError
from cxrkit.estimators import clear_feature_cache, feature_cache_stats

from ..conftest import make_separable


def test_transform_returns_the_backbone_features_and_reuses_the_cache() -> None:
    clear_feature_cache()
    X, _ = make_separable(10, 16)
    emb = CXREmbedder("tiny_cnn", input_size=16, batch_size=4).fit(X)
    feats = emb.transform(X)
    assert feats.shape == (10, emb.n_features_out_) and feats.dtype == np.float32
    prep = emb.preprocessing_
    x = (torch.from_numpy(X.astype(np.float32) / 255)[:, None] - prep.mean[0]) / prep.std[0]
    with torch.no_grad():
        ref = emb.module_.features(x.expand(-1, prep.channels, -1, -1)).numpy()
    np.testing.assert_allclose(feats, ref, rtol=1e-5, atol=1e-6)
    before = feature_cache_stats()
    np.testing.assert_array_equal(CXREmbedder("tiny_cnn", input_size=16).fit(X).transform(X), feats)
    after = feature_cache_stats()
    assert after["hits"] - before["hits"] == 10 and after["misses"] == before["misses"]
    assert len(emb.get_feature_names_out()) == emb.n_features_out_


def test_files_are_decoded_while_the_backbone_runs(tmp_path: Path) -> None:
    from PIL import Image

    X, _ = make_separable(6, 16)
    paths = []
    for i, img in enumerate(X):
        Image.fromarray(img).save(tmp_path / f"{i}.png")
        paths.append(str(tmp_path / f"{i}.png"))
    emb = CXREmbedder("tiny_cnn", input_size=16, batch_size=4, feature_cache=False).fit(paths)
    np.testing.assert_allclose(emb.transform(paths), emb.transform(X), rtol=1e-6)


def test_linear_probe_in_a_grouped_grid_search_learns() -> None:
    X, y = make_separable(40, 16)
    groups = np.repeat(np.arange(20), 2)
    probe = make_linear_probe("tiny_cnn", input_size=16, random_state=0)
    assert isinstance(probe, Pipeline) and [n for n, _ in probe.steps] == [
        "embed",
        "scale",
        "probe",
    ]
    search = GridSearchCV(
        probe, {"probe__C": [0.1, 1.0]}, cv=StratifiedGroupKFold(4), scoring="roc_auc"
    )
    search.fit(X, y, groups=groups)
    scores = cross_val_predict(
        search.best_estimator_,
        X,
        y,
        groups=groups,
        cv=StratifiedGroupKFold(4),
        method="predict_proba",
    )[:, 1]
    assert roc_auc_score(y == "pos", scores) > 0.95


def test_pooling_the_architecture_lacks_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="Architecture 'tiny_cnn' has no pooling option"):
        CXREmbedder("tiny_cnn", pooling="cls").fit()


def test_random_transforms_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="transforms must be deterministic; CXRLight"):
        CXREmbedder("tiny_cnn", transforms=["cxr_light"]).fit()


def test_linear_probe_cv_protocol_reports_figures_and_chosen_c() -> None:
    ds = load_dataset("synthetic", n_patients=16, images_per_patient=2, size=32, random_state=0)
    proto = create_protocol(
        "linear-probe-cv",
        architecture="tiny_cnn",
        input_size=32,
        n_splits=3,
        inner_splits=2,
        Cs=(0.1, 1.0),
        n_bootstraps=50,
        validity_checks=False,
    )
    result = proto.run(ds, progress=False)
    auc = result.metrics["auc"]
    assert auc["ci_low"] <= auc["value"] <= auc["ci_high"]
    assert not np.isnan(result.y_score).any() and set(result.folds) == {0, 1, 2}
    assert [r["C"] in (0.1, 1.0) for r in result.per_fold] == [True] * 3
    assert result.validity[0]["status"] == "PASS"  # the outer splitter is patient-grouped


def test_linear_probe_cv_scores_the_refit_probe_on_a_held_out_test_set() -> None:
    ds = load_dataset("synthetic", n_patients=16, images_per_patient=2, size=32, random_state=0)
    test = load_dataset("synthetic", n_patients=8, images_per_patient=2, size=32, random_state=5)
    options = dict(architecture="tiny_cnn", input_size=32, n_splits=3, inner_splits=2)
    proto = create_protocol("linear-probe-cv", Cs=(0.1, 1.0), n_bootstraps=50, **options)
    result = proto.run(ds, test=test, progress=False)
    section = next(s for s in result.sections if s.key == "held-out")
    assert [r["n_images"] for r in section.data["rows"]] == [len(ds), len(test)]
    # by hand: the protocol's own probe search refit on all of ds, scoring the test images
    embedder, search, _ = proto.build()
    embedder.fit(ds.X)
    y, groups = np.asarray(ds.y).astype(str), np.asarray(ds.groups).astype(str)
    final = search.fit(embedder.transform(ds.X), y, groups=groups)
    col = list(final.classes_).index(result.positive_label)
    expected = final.predict_proba(embedder.transform(test.X))[:, col]
    np.testing.assert_allclose(section.data["y_score"], expected, rtol=1e-6)
    assert "train_test_leakage" in {v["name"] for v in result.validity}


def test_embed_command_writes_ids_and_rereads_its_cache(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import pandas as pd

    from cxrkit.cli import main

    argv = [
        "embed",
        "--arch",
        "tiny_cnn",
        "--data",
        "synthetic",
        "--data-option",
        "n_patients=5",
        "--data-option",
        "size=32",
        "--input-size",
        "16",
        "--out",
        str(tmp_path),
        "--format",
        "npy",
        "--quiet",
    ]
    assert main(argv) == 0
    feats = np.load(tmp_path / "embeddings.npy")
    index = pd.read_csv(tmp_path / "index.csv")
    assert feats.shape[0] == len(index) == 10
    assert list(index.columns) == ["image", "patient_id", "label"]
    assert index["patient_id"].nunique() == 5
    clear_feature_cache()  # a new process would start empty
    assert main(argv) == 0
    assert feature_cache_stats()["disk_hits"] == 10
    np.testing.assert_array_equal(np.load(tmp_path / "embeddings.npy"), feats)
