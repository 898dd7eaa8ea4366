"""Output locations are checked before any work starts; Ctrl-C in the CLI exits 130."""

from __future__ import annotations

import signal

import pytest

from cxrkit._outputs import check_model_destination, check_output_folder
from cxrkit.cli import main
from cxrkit.errors import OutputPathError
from cxrkit.estimators import _snapshot

RUN = [
    "run",
    "hall2020-cv",
    "--data",
    "synthetic:",
    "--data-option",
    "n_patients=8",
    "--data-option",
    "size=32",
    "--arch",
    "tiny_cnn",
    "--set",
    "n_splits=2",
    "--set",
    "n_snapshots=2",
    "--set",
    "interval=1",
    "--set",
    "max_epochs=3",
    "--set",
    "input_size=16",
    "--set",
    "n_bootstraps=20",
    "--set",
    "probe_epochs=1",
    "--set",
    "if_threshold_not_reached=last",
    "--quiet",
]


@pytest.fixture
def a_file(tmp_path):
    f = tmp_path / "file.txt"
    f.write_text("x")
    return f


def test_check_output_folder(tmp_path, a_file):
    assert check_output_folder(tmp_path / "new" / "deeper") == tmp_path / "new" / "deeper"
    assert not (tmp_path / "new").exists()  # nothing is created
    with pytest.raises(
        OutputPathError,
        match=r"--out '.*file.txt/rep' cannot be written: "
        r"'.*file.txt' is a file, not a folder",
    ):
        check_output_folder(a_file / "rep", "--out")
    with pytest.raises(OutputPathError, match=r"cannot be written: '/proc/self' is not writable"):
        check_output_folder("/proc/self/rep")


def test_check_model_destination_refuses_a_foreign_folder(tmp_path):
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "a.txt").write_text("keep")
    with pytest.raises(OutputPathError, match="exists and is not a cxrkit model folder"):
        check_model_destination(tmp_path / "notes", "--save")
    (tmp_path / "m" / "svm").mkdir(parents=True)  # a folder of model folders is fine
    (tmp_path / "m" / "svm" / "manifest.json").write_text("{}")
    check_model_destination(tmp_path / "m")


@pytest.mark.parametrize("flag", ["--out", "--save"])
def test_cli_run_refuses_unwritable_outputs_before_training(
    tmp_path, a_file, capsys, flag, monkeypatch
):
    def no_training(*args, **kwargs):
        raise AssertionError("training started")

    monkeypatch.setattr("cxrkit.cli.run.run_protocol", no_training)
    args = [*RUN, "--out", str(tmp_path / "rep")]
    args += [flag, str(a_file / "x")]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert f"cxrkit: error: {flag} '{a_file / 'x'}' cannot be written" in err


def test_cli_predict_refuses_unwritable_gradcam_before_loading(tmp_path, a_file, capsys):
    code = main(
        ["predict", str(tmp_path / "no-model"), "img.png", "--gradcam", str(a_file / "cams")]
    )
    assert code == 2
    assert "--gradcam" in capsys.readouterr().err  # not the missing model: checked first


def test_cli_ctrl_c_during_training_exits_130(tmp_path, capsys, monkeypatch):
    original = _snapshot.SnapshotCallback.on_epoch_end

    def ctrl_c(self, net, **kwargs):
        original(self, net, **kwargs)
        signal.raise_signal(signal.SIGINT)

    monkeypatch.setattr(_snapshot.SnapshotCallback, "on_epoch_end", ctrl_c)
    code = main([*RUN, "--out", str(tmp_path / "rep"), "--save", str(tmp_path / "model")])
    assert code == 130
    assert capsys.readouterr().err.strip().endswith("cxrkit: interrupted")
    assert not (tmp_path / "model").exists() and not (tmp_path / "rep").exists()
