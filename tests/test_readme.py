"""The README's commands name real datasets, each documented with where to get it."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from cxrkit.datasets import list_datasets

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def _commands() -> list[list[str]]:
    blocks = re.findall(r"```bash\n(.*?)```", README, flags=re.S)
    text = "\n".join(blocks).replace("\\\n", " ")
    lines = [ln.split("#")[0].strip() for ln in text.splitlines()]
    return [shlex.split(ln) for ln in lines if ln.startswith("cxrkit ")]


def _dataset_args(cmd: list[str]) -> list[str]:
    flags = {"--data", "--test-data", "--controls"}
    return [cmd[i + 1] for i, a in enumerate(cmd[:-1]) if a in flags]


@pytest.mark.parametrize("cmd", _commands(), ids=lambda c: " ".join(c[:3]))
def test_readme_datasets_are_registered_and_documented(cmd):
    for spec in _dataset_args(cmd):
        name, _, root = spec.partition(":")
        assert name in list_datasets(), spec
        assert (ROOT / "docs" / "datasets" / f"{name}.md").exists(), spec
        if name != "csv":  # data that is not shipped: the README says where it comes from
            assert f"docs/datasets/{name}.md" in README, spec
        assert root and root.upper() != root, f"{spec}: a placeholder, not a folder name"


def test_readme_has_commands():
    assert len(_commands()) >= 5
