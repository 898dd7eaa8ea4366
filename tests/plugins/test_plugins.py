"""The pluggy plugin system: registries, errors, entry points, environment switches."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest
from sklearn.metrics import roc_auc_score

import cxrkit
from cxrkit import plugins
from cxrkit.architectures import create_architecture, list_architectures
from cxrkit.errors import DuplicateNameError, UnknownNameError
from cxrkit.hookspecs import hookimpl

from ..conftest import make_separable

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def fresh_plugins(monkeypatch):
    """A plugin manager rebuilt from the environment, restored afterwards."""
    plugins.reset()
    try:
        yield monkeypatch
    finally:
        plugins.reset()


def test_builtins_are_registered_through_the_plugin_manager():
    pm = plugins.get_plugin_manager()
    names = {n for n, _ in pm.list_name_plugin()}
    assert "cxrkit.architectures.plugin" in names
    assert {"resnet50", "resnet101", "vgg16", "hall2020_cnn"} <= set(list_architectures())
    assert list_architectures("resnet*") == ["resnet101", "resnet18", "resnet50"]
    entry = plugins.get_registry("architecture").get("hall2020_cnn")
    assert entry.plugin == "cxrkit.architectures.plugin"


def test_unknown_name_suggests_closest():
    with pytest.raises(
        UnknownNameError,
        match=r"Unknown architecture 'resnet5'\. Did you mean "
        r"'resnet50'.*\? Available: hall2020_cnn, (.*, )?resnet101",
    ):
        create_architecture("resnet5")
    with pytest.raises(KeyError):  # also a KeyError for callers that do not know cxrkit
        create_architecture("nope")


class _DupPlugin:
    @hookimpl
    def cxrkit_register_architectures(self, register):
        register("resnet50", lambda **kw: None)


def test_duplicate_name_names_both_plugins():
    with pytest.raises(
        DuplicateNameError,
        match="'resnet50' is registered twice: by plugin "
        "'cxrkit.architectures.plugin' and by plugin 'dup-plugin'",
    ):
        plugins.register_plugin(_DupPlugin(), name="dup-plugin")
    # the failed plugin was rolled back; the registry still works
    assert "resnet50" in list_architectures()


class _TinyPlugin:
    @hookimpl
    def cxrkit_register_architectures(self, register):
        from cxrkit.architectures._tiny import build_tiny_cnn

        register("my_tiny", build_tiny_cnn, description="a test architecture")


def test_runtime_plugin_register_and_unregister():
    name = plugins.register_plugin(_TinyPlugin(), name="tiny-test-plugin")
    try:
        assert "my_tiny" in list_architectures()
        net = create_architecture("my_tiny")
        assert net.num_features == 32
    finally:
        plugins.unregister_plugin(name)
    assert "my_tiny" not in list_architectures()


def test_misspelled_hook_is_rejected():
    class Bad:
        @hookimpl
        def cxrkit_register_architecture(self, register):  # missing "s"
            pass

    with pytest.raises(Exception, match="unknown hook 'cxrkit_register_architecture'"):
        plugins.register_plugin(Bad(), name="bad-hook")
    plugins.get_plugin_manager().unregister(name="bad-hook")


def _install_plugin_metadata(tmp_path: Path, monkeypatch) -> None:
    """Make the out-of-tree plugin discoverable through real entry-point metadata
    (what pip writes), without modifying the environment."""
    src = REPO / "plugins" / "cxrkit-extra-archs" / "src"
    dist = tmp_path / "cxrkit_extra_archs-0.1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: cxrkit-extra-archs\nVersion: 0.1.0\n"
    )
    (dist / "entry_points.txt").write_text(
        textwrap.dedent("""\
        [cxrkit]
        extra_archs = cxrkit_extra_archs
    """)
    )
    monkeypatch.syspath_prepend(str(src))
    monkeypatch.syspath_prepend(str(tmp_path))


def test_out_of_tree_plugin_through_entry_points(tmp_path, fresh_plugins):
    monkeypatch = fresh_plugins
    monkeypatch.delenv(plugins.AUTOLOAD_ENV, raising=False)
    _install_plugin_metadata(tmp_path, monkeypatch)
    plugins.reset()
    assert {"densenet121", "lenet_cxr"} <= set(list_architectures())
    entry = plugins.get_registry("architecture").get("lenet_cxr")
    assert entry.plugin == "extra_archs"
    info = {p["name"]: p for p in plugins.list_plugins()}
    assert info["extra_archs"]["distribution"] == "cxrkit-extra-archs 0.1.0"

    X, y = make_separable(40, 32)
    clf = cxrkit.CXRClassifier(
        "lenet_cxr", input_size=32, max_epochs=15, lr=3e-3, random_state=0
    ).fit(X, y)
    assert roc_auc_score(y == "pos", clf.predict_proba(X)[:, 1]) > 0.95


def test_autoload_switch_and_block_list(tmp_path, fresh_plugins):
    monkeypatch = fresh_plugins
    _install_plugin_metadata(tmp_path, monkeypatch)
    monkeypatch.setenv(plugins.AUTOLOAD_ENV, "1")
    plugins.reset()
    assert "lenet_cxr" not in list_architectures()
    assert "resnet50" in list_architectures()  # built-ins still load

    monkeypatch.delenv(plugins.AUTOLOAD_ENV)
    monkeypatch.setenv(plugins.BLOCK_ENV, "extra_archs, cxrkit.architectures.plugin")
    plugins.reset()
    assert list_architectures() == []
    monkeypatch.delenv(plugins.BLOCK_ENV)
    plugins.reset()
    assert "lenet_cxr" in list_architectures()
    sys.modules.pop("cxrkit_extra_archs", None)
