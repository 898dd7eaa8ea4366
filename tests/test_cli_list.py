"""``cxrkit list`` reads the registries without importing torch or any implementation."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from cxrkit.cli import main


@pytest.mark.parametrize("kind", ["architectures", "datasets", "transforms", "protocols"])
def test_list_does_not_import_torch(kind):
    code = (
        "import sys\n"
        "from cxrkit.cli import main\n"
        f"assert main(['list', {kind!r}]) == 0\n"
        "heavy = [m for m in ('torch', 'torchvision', 'skorch') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    env = {**os.environ, "CXRKIT_DISABLE_PLUGIN_AUTOLOAD": "1"}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert len(done.stdout.splitlines()) >= 4


def test_list_shows_names_plugins_and_descriptions(capsys):
    assert main(["list", "protocols"]) == 0
    rows = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()}
    assert "hall2020-cv" in rows
    assert "cxrkit.evaluation.plugin" in rows["hall2020-cv"]
    assert "cross-validation" in rows["hall2020-cv"]
