"""hall2020-unseen on file-based datasets: the JPEG-q90 re-encoding of the training and
the test negatives never mixes their files (both datasets share the loader's name)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from PIL import Image

import cxrkit.ensembles
import cxrkit.evaluation.protocols._unseen as unseen
from cxrkit.datasets import load_dataset
from cxrkit.evaluation.protocols import Hall2020Unseen


def _write_csv(folder, labels, seed, prefix):
    rng = np.random.default_rng(seed)
    folder.mkdir()
    rows = []
    for i, label in enumerate(labels):
        img = rng.integers(0, 120, (32, 32), dtype=np.uint8)
        if label == "covid":
            img[8:24, 8:24] = 230
        name = f"{prefix}{i:03d}.png"
        Image.fromarray(img).save(folder / name)
        rows.append({"image": name, "label": label, "patient_id": f"{prefix}{i}"})
    pd.DataFrame(rows).to_csv(folder / "metadata.csv", index=False)
    return load_dataset("csv", root=str(folder / "metadata.csv"))


def test_recompressed_train_and_test_files_stay_apart(tmp_path, monkeypatch):
    train = _write_csv(tmp_path / "train", ["covid", "pneumonia"] * 12, 0, "tr")
    test = _write_csv(tmp_path / "test", ["covid", "normal"] * 6, 1, "te")
    seen: dict[str, np.ndarray] = {}
    fit = cxrkit.ensembles.fit_with_groups
    predict = unseen.timed_predict

    def spy_fit(vote, X, y, groups):
        seen["train"] = np.asarray(X)
        return fit(vote, X, y, groups)

    def spy_predict(vote, X, pos_idx):
        seen["test"] = np.asarray(X)
        return predict(vote, X, pos_idx)

    monkeypatch.setattr(cxrkit.ensembles, "fit_with_groups", spy_fit)
    monkeypatch.setattr(unseen, "timed_predict", spy_predict)
    p = Hall2020Unseen(
        architectures=("tiny_cnn",),
        pretrained=None,
        n_snapshots=2,
        interval=1,
        max_epochs=2,
        validation=2,
        test_labels=("covid", "normal"),
        input_size=32,
        n_bootstraps=20,
        probes=False,
        estimator_params={"optimizer": "adam", "lr_schedule": None},
    )
    r = p.run(train, test=test, progress=False)
    assert not set(map(str, seen["train"])) & set(map(str, seen["test"]))
    # Each test image the model scored is its own image (re-encoded where it is 'normal').
    for scored, original, label in zip(seen["test"], test.X, test.y, strict=True):
        a = np.asarray(Image.open(scored).convert("L"), dtype=float)
        b = np.asarray(Image.open(original).convert("L"), dtype=float)
        assert np.abs(a - b).mean() < (8 if label == "normal" else 1e-9), (scored, original)
    # The report names the user's files, not the temporary re-encoded copies.
    assert r.images == [str(v) for v in test.X]
    dup = next(v for v in r.validity if v["name"] == "train_test_duplicates")
    assert dup["status"] == "PASS", dup
