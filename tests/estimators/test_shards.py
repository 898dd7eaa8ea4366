"""embed_to_shards / predict_to_shards: equal values, resume, refusals, Dask, command line."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cxrkit.errors import DataError, OutputPathError
from cxrkit.estimators import (
    CXRClassifier,
    CXREmbedder,
    _shard_store,
    _shards,
    embed_to_shards,
    predict_to_shards,
    read_manifest,
    read_shards,
    save_model,
)

from ..conftest import make_separable

N, SIZE, SHARD = 10, 16, 4  # 3 shards: 4 + 4 + 2 images


@pytest.fixture(scope="module")
def pngs(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    folder = tmp_path_factory.mktemp("png")
    X, _ = make_separable(N, SIZE)
    paths = []
    for i, img in enumerate(X):
        Image.fromarray(img).save(folder / f"img{i:02d}.png")
        paths.append(str(folder / f"img{i:02d}.png"))
    return paths


@pytest.fixture(scope="module")
def classifier() -> CXRClassifier:
    X, y = make_separable(16, SIZE)
    return CXRClassifier("tiny_cnn", input_size=SIZE, max_epochs=1, batch_size=4).fit(X, y)


def _embedder(**kw: object) -> CXREmbedder:
    return CXREmbedder(
        **{"architecture": "tiny_cnn", "input_size": SIZE, "batch_size": 3, **kw}
    ).fit()  # type: ignore[arg-type]


def _count_computed(monkeypatch: pytest.MonkeyPatch, fail_at: int | None = None) -> list[int]:
    """Count the shards computed from now on; raise while computing shard number ``fail_at``."""
    calls: list[int] = []
    real = _shards._compute

    def counting(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(len(args[2]))
        if fail_at is not None and len(calls) == fail_at:
            raise KeyboardInterrupt  # what a killed run leaves: no exception handling after
        return real(*args, **kwargs)

    monkeypatch.setattr(_shards, "_compute", counting)
    return calls


def test_embedding_shards_equal_a_plain_transform(pngs: list[str], tmp_path: Path) -> None:
    emb = _embedder()
    run = embed_to_shards(emb, pngs, tmp_path, shard_size=SHARD, progress=False)
    assert (run.n_shards, run.n_done, run.n_skipped_resumed, run.n_images) == (3, 3, 0, N)
    ids, values = read_shards(tmp_path)
    assert list(ids["id"]) == pngs and values.dtype == np.float32
    np.testing.assert_allclose(values, emb.transform(pngs), rtol=1e-6, atol=1e-7)
    manifest = read_manifest(tmp_path)
    assert manifest["n_images"] == N and manifest["shard_size"] == SHARD
    assert manifest["columns"] == [f"f{i}" for i in range(emb.n_features_out_)]
    names = sorted(p.name for p in (tmp_path / "shards").iterdir())
    assert not [n for n in names if n.startswith(".")]  # no temporaries left
    assert len([n for n in names if n.startswith("part-")]) in (3, 6)  # parquet, or npy + ids
    frame = read_shards(tmp_path, as_frame=True)
    assert list(frame.columns[:2]) == ["id", "f0"] and len(frame) == N


def test_prediction_shards_equal_predict_proba(
    pngs: list[str], classifier: CXRClassifier, tmp_path: Path
) -> None:
    run = predict_to_shards(classifier, pngs, tmp_path, shard_size=SHARD, progress=False)
    assert run.n_shards == 3
    frame = read_shards(tmp_path, as_frame=True)
    assert list(frame.columns) == ["id", "p(neg)", "p(pos)"]
    np.testing.assert_array_equal(
        frame[["p(neg)", "p(pos)"]].to_numpy(), classifier.predict_proba(pngs)
    )


def test_arrays_get_row_numbers_as_ids_and_own_ids_are_kept(tmp_path: Path) -> None:
    X = make_separable(6, SIZE)[0][:5]
    embed_to_shards(_embedder(), X, tmp_path / "a", shard_size=2, progress=False)
    assert list(read_shards(tmp_path / "a")[0]["id"]) == ["0", "1", "2", "3", "4"]
    ids = [f"p{i}/NA,1" for i in range(5)]  # commas and NA survive the round trip
    embed_to_shards(_embedder(), X, tmp_path / "b", ids=ids, shard_size=2, progress=False)
    assert list(read_shards(tmp_path / "b")[0]["id"]) == ids
    with pytest.raises(DataError, match="ids has 4 entries for 5 images"):
        embed_to_shards(_embedder(), X, tmp_path / "c", ids=ids[:4], progress=False)


def test_a_killed_run_resumes_with_the_missing_shards_only(
    pngs: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    full = _embedder().transform(pngs)
    calls = _count_computed(monkeypatch, fail_at=3)
    with pytest.raises(KeyboardInterrupt):
        embed_to_shards(_embedder(), pngs, tmp_path, shard_size=SHARD, progress=False)
    assert len(calls) == 3  # the third shard was being computed when the run stopped
    with pytest.raises(DataError, match="1 of 3 shards .* missing"):
        read_shards(tmp_path)
    stale = tmp_path / "shards" / f".tmp-{socket.gethostname()}-999999999-part-00002.npy"
    stale.write_bytes(b"left by a killed process")
    calls = _count_computed(monkeypatch)
    run = embed_to_shards(_embedder(), pngs, tmp_path, shard_size=SHARD, progress=False)
    assert (run.n_done, run.n_skipped_resumed) == (1, 2) and calls == [2]  # the last 2 images
    assert not stale.exists()
    np.testing.assert_allclose(read_shards(tmp_path)[1], full, rtol=1e-6, atol=1e-7)

    for p in (tmp_path / "shards").glob("part-00001.*"):  # a lost (or truncated) shard
        p.unlink()
    calls = _count_computed(monkeypatch)
    run = embed_to_shards(_embedder(), pngs, tmp_path, shard_size=SHARD, progress=False)
    assert (run.n_done, run.n_skipped_resumed, calls) == (1, 2, [SHARD])
    np.testing.assert_allclose(read_shards(tmp_path)[1], full, rtol=1e-6, atol=1e-7)


def test_a_shard_interrupted_while_written_leaves_no_file(
    pngs: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def half_written(*args, **kwargs):  # type: ignore[no-untyped-def]
        path = next(a for a in args if isinstance(a, (str, Path)))  # np.save / DataFrame method
        Path(path).write_bytes(b"\x93NUMPY partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(_shard_store.np, "save", half_written)
    monkeypatch.setattr("pandas.DataFrame.to_parquet", half_written)
    with pytest.raises(OSError, match="No space left"):
        embed_to_shards(_embedder(), pngs, tmp_path, shard_size=SHARD, progress=False)
    left = sorted(p.name for p in (tmp_path / "shards").iterdir())
    assert not [n for n in left if n.endswith((".npy", ".parquet")) or n.startswith(".")], left


def test_a_folder_of_another_run_is_refused_unless_overwritten(
    pngs: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    embed_to_shards(_embedder(), pngs, tmp_path, shard_size=SHARD, progress=False)
    with pytest.raises(OutputPathError, match="holds shards of another run .*fingerprint"):
        embed_to_shards(_embedder(random_state=1), pngs, tmp_path, shard_size=SHARD)
    with pytest.raises(OutputPathError, match="n_images: 10 there, 9 now.*new folder.*overwrite"):
        embed_to_shards(_embedder(), pngs[:9], tmp_path, shard_size=SHARD)
    with pytest.raises(OutputPathError, match="shard_size: 4 there, 5 now"):
        embed_to_shards(_embedder(), pngs, tmp_path, shard_size=5)
    other = _embedder(random_state=1)
    calls = _count_computed(monkeypatch)
    run = embed_to_shards(other, pngs, tmp_path, shard_size=SHARD, overwrite=True, progress=False)
    assert (run.n_done, run.n_skipped_resumed, len(calls)) == (3, 0, 3)
    np.testing.assert_allclose(
        read_shards(tmp_path)[1], other.transform(pngs), rtol=1e-6, atol=1e-7
    )
    # speed settings do not change the values: the folder is resumed, nothing recomputed
    faster = _embedder(batch_size=8, feature_cache=False, random_state=1)
    assert embed_to_shards(faster, pngs, tmp_path, shard_size=SHARD, progress=False).n_done == 0


def test_a_model_folder_is_not_taken_for_a_shard_folder(
    classifier: CXRClassifier, pngs: list[str], tmp_path: Path
) -> None:
    save_model(classifier, tmp_path / "model")
    with pytest.raises(OutputPathError, match="not a shard run's"):
        predict_to_shards(classifier, pngs, tmp_path / "model", progress=False)
    (tmp_path / "model" / "manifest.json").unlink()  # an older model folder
    with pytest.raises(OutputPathError, match="holds a config.json"):
        predict_to_shards(classifier, pngs, tmp_path / "model", progress=False)
    (tmp_path / "broken" / "shards").mkdir(parents=True)
    (tmp_path / "broken" / "shards" / "part-00000.npy").write_bytes(b"")
    with pytest.raises(OutputPathError, match="manifest.json' does not"):
        predict_to_shards(classifier, pngs, tmp_path / "broken", progress=False)


@pytest.mark.slow
def test_shards_on_a_dask_cluster_equal_the_serial_run(
    pngs: list[str], classifier: CXRClassifier, tmp_path: Path
) -> None:
    distributed = pytest.importorskip("distributed", reason="pip install 'cxrkit[dask]'")
    emb = _embedder()
    serial = tmp_path / "serial"
    embed_to_shards(emb, pngs, serial / "emb", shard_size=SHARD, progress=False)
    predict_to_shards(classifier, pngs, serial / "pred", shard_size=SHARD, progress=False)
    with (
        distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
            silence_logs=40,
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        run = embed_to_shards(
            emb, pngs, tmp_path / "emb", shard_size=SHARD, scheduler=client, progress=False
        )
        assert (run.n_shards, run.n_done) == (3, 3)
        predict_to_shards(
            classifier, pngs, tmp_path / "pred", shard_size=SHARD, scheduler=client, progress=False
        )
        pids = set(client.run(os.getpid).values())
    assert len(pids) == 2 and os.getpid() not in pids  # two worker processes
    for name in ("emb", "pred"):
        ids, values = read_shards(tmp_path / name)
        ids0, values0 = read_shards(serial / name)
        assert list(ids["id"]) == list(ids0["id"])
        np.testing.assert_allclose(values, values0, rtol=1e-6, atol=1e-7)
    manifest, manifest0 = read_manifest(tmp_path / "emb"), read_manifest(serial / "emb")
    assert manifest["fingerprint"] == manifest0["fingerprint"]


def test_embed_command_writes_shards(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
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
        "shards",
        "--shard-size",
        "4",
    ]
    assert main([*argv, "--quiet"]) == 0
    ids, values = read_shards(tmp_path)
    assert values.shape == (10, 32) and (tmp_path / "index.csv").is_file()
    assert read_manifest(tmp_path)["meta"]["architecture"] == "tiny_cnn"
    assert not (tmp_path / "feature-cache").exists()  # the shards are the store
    assert main(argv) == 0
    assert "3 shards (3 kept from an earlier run)" in capsys.readouterr().out
    np.testing.assert_array_equal(read_shards(tmp_path)[1], values)
    argv[argv.index("shards")] = "npy"
    assert main([*argv, "--scheduler", "tcp://127.0.0.1:1"]) == 2
    assert "--scheduler applies to --format shards" in capsys.readouterr().err


def test_predict_command_writes_shards_and_still_prints_without_out(
    pngs: list[str], classifier: CXRClassifier, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from cxrkit.cli import main

    save_model(classifier, tmp_path / "model")
    folder = str(Path(pngs[0]).parent)  # a folder stands for its images
    out = tmp_path / "pred"
    argv = ["predict", str(tmp_path / "model"), folder, "--out", str(out), "--shard-size", "4"]
    assert main(argv) == 0
    assert "10 images" in capsys.readouterr().out
    assert main(argv) == 0  # the model loaded again has the same fingerprint: resumed
    assert "3 shards (3 kept from an earlier run)" in capsys.readouterr().out
    frame = read_shards(out, as_frame=True)
    assert list(frame["id"]) == pngs
    np.testing.assert_allclose(
        frame[["p(neg)", "p(pos)"]].to_numpy(), classifier.predict_proba(pngs), atol=1e-12
    )
    assert main(["predict", str(tmp_path / "model"), pngs[0]]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("image\tp(neg)\tp(pos)\tprediction") and pngs[0] in printed
    assert json.loads((out / "manifest.json").read_text())["kind"] == "predict_proba"
