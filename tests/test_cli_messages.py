"""The command line shows warnings as plain lines and hints as flags, also in the report."""

from __future__ import annotations

import json

import numpy as np
from PIL import Image

from cxrkit.cli import main
from cxrkit.cli.messages import cli_terms


def test_python_hints_become_flags():
    assert cli_terms("or pass on_error='skip' to leave them out") == (
        "or pass --data-option on_error=skip to leave them out"
    )
    assert cli_terms("load the data with cxrkit.datasets.load_dataset(..., on_error='skip')") == (
        "load the data with --data-option on_error=skip"
    )
    assert cli_terms("Pass patient_pattern=, a regular expression") == (
        "Pass --data-option patient_pattern=REGEX, a regular expression"
    )
    assert cli_terms("set n_splits=3") == "set n_splits=3"  # not a loader option


def _folder(tmp_path, broken=False):
    rng = np.random.default_rng(0)
    for c in "ab":
        (tmp_path / c).mkdir(parents=True)
        for i in range(6):
            img = rng.integers(0, 255, (32, 32), dtype=np.uint8)
            Image.fromarray(img).save(tmp_path / c / f"{i}.png")
    if broken:
        (tmp_path / "a" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nxxxx")
    return tmp_path


def test_check_prints_warnings_without_file_and_line(tmp_path, capsys):
    root = _folder(tmp_path / "d", broken=True)
    code = main(["check", "--data", f"image-folder:{root}", "--labels", "a,b", "--quiet"])
    err = " ".join(capsys.readouterr().err.split())  # wrapped to the terminal's width
    assert code == 2
    assert "warning: image-folder" in err and "--data-option patient_pattern=REGEX" in err
    assert "UserWarning" not in err and ".py:" not in err
    assert "--data-option on_error=skip" in err and "on_error='skip'" not in err


def test_run_puts_data_warnings_in_the_report(tmp_path, capsys):
    root = _folder(tmp_path / "d")
    args = ["run", "hall2020-cv", "--data", f"image-folder:{root}", "--arch", "tiny_cnn"]
    for opt in (
        "n_splits=2",
        "n_snapshots=2",
        "interval=1",
        "max_epochs=3",
        "input_size=32",
        "n_bootstraps=20",
        "probes=false",
        "if_threshold_not_reached=last",
    ):
        args += ["--set", opt]
    assert main([*args, "--labels", "a,b", "--out", str(tmp_path / "rep"), "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "UserWarning" not in err
    report = json.loads((tmp_path / "rep" / "metrics.json").read_text())
    assert any("has no patient ids" in w for w in report["warnings"]), report["warnings"]


def test_run_save_writes_a_model_card_the_model_still_loads(tmp_path, capsys):
    from cxrkit import load_model

    root = _folder(tmp_path / "d")
    args = ["run", "hall2020-cv", "--data", f"image-folder:{root}", "--arch", "tiny_cnn"]
    for opt in ("n_splits=2", "n_snapshots=2", "interval=1", "max_epochs=3", "input_size=32"):
        args += ["--set", opt]
    args += ["--set", "n_bootstraps=20", "--set", "probes=false", "--labels", "a,b"]
    args += ["--set", "if_threshold_not_reached=last", "--quiet", "--out", str(tmp_path / "r")]
    assert main([*args, "--save", str(tmp_path / "model")]) == 0
    assert "model card: MODEL_CARD.md" in capsys.readouterr().out
    card = (tmp_path / "model" / "MODEL_CARD.md").read_text()
    assert "Intended use" in card and "hall2020-cv" in card
    assert list(load_model(tmp_path / "model").classes_) == ["a", "b"]


def test_the_cli_package_names_no_protocol():
    from pathlib import Path

    import cxrkit.cli
    from cxrkit.evaluation.protocols import list_protocols

    sources = [p.read_text() for p in Path(cxrkit.cli.__file__).parent.glob("*.py")]
    for name in list_protocols():
        assert not any(name in src for src in sources), name
