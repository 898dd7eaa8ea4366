"""Model folders: atomic saves, manifests, schema validation of untrusted folders."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from cxrkit import CXRClassifier, SnapshotEnsembleClassifier, load_model, save_model
from cxrkit.errors import CxrkitError, ModelFormatError, OutputPathError

from ..conftest import make_separable


@pytest.fixture(scope="module")
def data():
    return make_separable(16, 16)


def _fit(classes, seed, data):
    X, y = data
    y = np.where(y == "pos", classes[1], classes[0])
    return CXRClassifier(
        "tiny_cnn", input_size=16, max_epochs=1, batch_size=8, random_state=seed
    ).fit(X, y)


@pytest.fixture(scope="module")
def two_models(data):
    return _fit(("covid", "normal"), 0, data), _fit(("covid", "pneumonia"), 1, data)


@pytest.fixture(scope="module")
def ensemble(data):
    X, y = data
    return SnapshotEnsembleClassifier(
        CXRClassifier("tiny_cnn", input_size=16, max_epochs=3, batch_size=8, random_state=0),
        policy="last",
        n_snapshots=3,
        interval=1,
    ).fit(X, y)


def test_interrupted_save_keeps_the_previous_model(tmp_path, two_models, data, monkeypatch):
    old, new = two_models
    d = tmp_path / "m"
    save_model(old, d)

    def boom(self, *args, **kwargs):  # Ctrl-C after the weights, before config.json
        raise KeyboardInterrupt

    monkeypatch.setattr(Path, "write_text", boom)
    with pytest.raises(KeyboardInterrupt):
        save_model(new, d)
    monkeypatch.undo()
    loaded = load_model(d)
    assert list(loaded.classes_) == ["covid", "normal"]
    np.testing.assert_allclose(loaded.predict_proba(data[0]), old.predict_proba(data[0]), atol=1e-6)
    assert [p.name for p in tmp_path.iterdir()] == ["m"]  # no temporary folder left


def test_mixed_files_are_refused(tmp_path, two_models):
    old, new = two_models
    save_model(old, tmp_path / "a")
    save_model(new, tmp_path / "b")
    (tmp_path / "a" / "model.safetensors").write_bytes(
        (tmp_path / "b" / "model.safetensors").read_bytes()
    )
    with pytest.raises(ModelFormatError, match=r"model.safetensors' does not match the manifest"):
        load_model(tmp_path / "a")


def test_mixed_ensemble_members_are_refused(tmp_path, ensemble):
    save_model(ensemble, tmp_path / "e")
    member = tmp_path / "e" / "member_01.safetensors"
    member.write_bytes((tmp_path / "e" / "member_02.safetensors").read_bytes())
    with pytest.raises(ModelFormatError, match=r"member_01.safetensors' does not match"):
        load_model(tmp_path / "e")


def test_resave_replaces_whole_folder(tmp_path, two_models, ensemble, data):
    d = tmp_path / "m"
    save_model(ensemble, d)
    save_model(two_models[1], d)  # a classifier over an ensemble: no stale members kept
    assert sorted(p.name for p in d.iterdir()) == [
        "config.json",
        "manifest.json",
        "model.safetensors",
    ]
    assert list(load_model(d).classes_) == ["covid", "pneumonia"]
    save_model(ensemble, d)
    np.testing.assert_allclose(
        load_model(d).predict_proba(data[0]), ensemble.predict_proba(data[0]), atol=1e-6
    )


def test_refuses_to_replace_a_foreign_folder(tmp_path, two_models):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "thesis.tex").write_text("precious")
    with pytest.raises(OutputPathError, match="is not a cxrkit model folder; refusing"):
        save_model(two_models[0], tmp_path / "docs")
    assert (tmp_path / "docs" / "thesis.tex").read_text() == "precious"


def _edit_config(d: Path, edit) -> None:
    """Change config.json and re-sign the manifest (as a hostile folder would)."""
    from cxrkit.estimators._atomic import file_digest

    config = json.loads((d / "config.json").read_text())
    edit(config)
    (d / "config.json").write_text(json.dumps(config))
    manifest = json.loads((d / "manifest.json").read_text())
    manifest["files"]["config.json"] = file_digest(d / "config.json")
    (d / "manifest.json").write_text(json.dumps(manifest))


@pytest.mark.parametrize(
    "edit, message",
    [
        (
            lambda c: c["preprocessing"].update(input_size=100000),
            r"field 'preprocessing.input_size': 100000 is greater than the maximum of 2048",
        ),
        (lambda c: c.update(format=99), r"has format 99; this cxrkit reads model formats 1, 2"),
        (lambda c: c.pop("classes"), r"field '\(top level\)': 'classes' is a required property"),
        (
            lambda c: c["params"].update(callbacks=["print"]),
            r"field 'params': unknown key\(s\) \['callbacks'\]; expected one of \['amp', 'architecture'",
        ),
        (
            lambda c: c["params"].update(architecture="no_such_net"),
            r"field 'params.architecture': Unknown architecture",
        ),
        (lambda c: c.update(classes=["a", "a"]), r"field 'classes': .* non-unique elements"),
    ],
)
def test_untrusted_config_is_refused_naming_the_field(tmp_path, two_models, edit, message):
    d = tmp_path / "m"
    save_model(two_models[0], d)
    _edit_config(d, edit)
    with pytest.raises(ModelFormatError, match=r"config.json'.*" + message):
        load_model(d)


def test_truncated_files_are_refused(tmp_path, two_models):
    d = tmp_path / "m"
    save_model(two_models[0], d)
    for name in ("model.safetensors", "config.json"):
        data = (d / name).read_bytes()
        (d / name).write_bytes(data[: len(data) // 2])
        with pytest.raises(ModelFormatError, match=rf"{name}' does not match the manifest"):
            load_model(d)
        (d / name).write_bytes(data)
    (d / "manifest.json").unlink()  # a format-2 folder without its manifest
    with pytest.raises(ModelFormatError, match="manifest.json' is missing"):
        load_model(d)


def test_format1_folder_without_manifest_loads_with_a_warning(tmp_path, two_models, data):
    d = tmp_path / "m"
    save_model(two_models[0], d)
    (d / "manifest.json").unlink()
    config = json.loads((d / "config.json").read_text())
    config["format"] = 1
    (d / "config.json").write_text(json.dumps(config))
    with pytest.warns(UserWarning, match="format-1 model folder without a manifest"):
        loaded = load_model(d)
    np.testing.assert_allclose(
        loaded.predict_proba(data[0]), two_models[0].predict_proba(data[0]), atol=1e-6
    )
    (d / "config.json").write_text(json.dumps(config)[:-20])
    with pytest.raises(ModelFormatError, match=r"config.json' is not valid JSON"):
        load_model(d)


def test_not_a_model_folder(tmp_path):
    with pytest.raises(CxrkitError, match="is not a cxrkit model folder: expected manifest"):
        load_model(tmp_path / "missing")


def _rewrite_config(d: Path, change) -> None:  # type: ignore[no-untyped-def]
    """Edit config.json and record its new digest in the manifest."""
    from cxrkit.estimators._atomic import file_digest

    config = json.loads((d / "config.json").read_text())
    change(config)
    (d / "config.json").write_text(json.dumps(config))
    manifest = json.loads((d / "manifest.json").read_text())
    manifest["files"]["config.json"] = file_digest(d / "config.json")
    (d / "manifest.json").write_text(json.dumps(manifest))


def test_saved_models_carry_the_current_format(tmp_path, two_models):
    from cxrkit.estimators._model_schema import FORMAT

    save_model(two_models[0], tmp_path / "m")
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    manifest = json.loads((tmp_path / "m" / "manifest.json").read_text())
    assert config["format"] == manifest["format"] == FORMAT == 3
    assert not {"grayscale_conv", "channels_last", "tune_malloc"} & set(config["params"])


def test_format2_folder_is_upgraded(tmp_path, ensemble, data):
    d = tmp_path / "e"
    save_model(ensemble, d)

    def to_format2(config):  # what cxrkit wrote before the switches became config keys
        config["format"] = 2
        config["params"].update(grayscale_conv="auto", channels_last=False, tune_malloc=True)

    _rewrite_config(d, to_format2)
    manifest = json.loads((d / "manifest.json").read_text())
    manifest["format"] = 2
    (d / "manifest.json").write_text(json.dumps(manifest))
    loaded = load_model(d)
    assert not {"grayscale_conv", "channels_last", "tune_malloc"} & set(
        loaded.estimator_.get_params()
    )
    np.testing.assert_allclose(
        loaded.predict_proba(data[0]), ensemble.predict_proba(data[0]), atol=1e-6
    )


def test_format3_folder_with_a_removed_parameter_is_refused(tmp_path, two_models):
    d = tmp_path / "m"
    save_model(two_models[0], d)
    _rewrite_config(d, lambda c: c["params"].update(tune_malloc=False))
    with pytest.raises(
        ModelFormatError, match=r"field 'params': unknown key\(s\) \['tune_malloc'\]"
    ):
        load_model(d)


def test_newer_format_is_refused(tmp_path, two_models):
    d = tmp_path / "m"
    save_model(two_models[0], d)
    _rewrite_config(d, lambda c: c.update(format=4))
    with pytest.raises(
        ModelFormatError, match=r"has format 4; this cxrkit reads model formats 1, 2, 3"
    ):
        load_model(d)


def test_pickle_of_an_older_format_is_upgraded(two_models, data):
    import pickle

    clf = two_models[0]
    state = clf.__getstate__()
    del state["_cxrkit_format"], state["tta"], state["cache_dir"]  # written before they existed
    state["tune_malloc"] = False  # a parameter then, a cxrkit.set_config key now
    old = CXRClassifier.__new__(CXRClassifier)
    old.__setstate__(state)
    assert old.tta is None and old.cache_dir is None and "tune_malloc" not in vars(old)
    np.testing.assert_allclose(old.predict_proba(data[0]), clf.predict_proba(data[0]), atol=1e-6)
    assert pickle.loads(pickle.dumps(old)).get_params() == old.get_params()


def test_pickle_of_a_newer_format_is_refused(two_models):
    state = two_models[0].__getstate__()
    state["_cxrkit_format"] = 99
    with pytest.raises(ModelFormatError, match="has format 99; this cxrkit reads formats up to 3"):
        CXRClassifier.__new__(CXRClassifier).__setstate__(state)
