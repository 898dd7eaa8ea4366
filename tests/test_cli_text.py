"""Descriptions on the command line are plain text, without reST markup."""

from __future__ import annotations

import pytest

from cxrkit.cli import main
from cxrkit.cli.text import plain_text
from cxrkit.hookspecs import hookimpl
from cxrkit.plugins import register_plugin, unregister_plugin


@pytest.mark.parametrize(
    ("rst", "plain"),
    [
        ("Three blocks (``width``, 2x, 4x channels).", "Three blocks (width, 2x, 4x channels)."),
        ("See :func:`cxrkit.io.resize_image`.", "See cxrkit.io.resize_image."),
        ("A :class:`~cxrkit.datasets.CXRDataset`.", "A CXRDataset."),
        ("Like :func:`the loader <cxrkit.datasets.load_csv_dataset>`.", "Like the loader."),
        ("The `default role` and :py:meth:`!Registry.get`.", "The default role and Registry.get."),
        ("(x - mean) / std, 2 * 3 and a ` lone tick", "(x - mean) / std, 2 * 3 and a ` lone tick"),
    ],
)
def test_plain_text_removes_rest_markup(rst, plain):
    assert plain_text(rst) == plain


class _MarkupPlugin:
    @hookimpl
    def cxrkit_register_transforms(self, register):
        def marked(**options):
            """Invert with ``p`` like :class:`~cxrkit.transforms.HorizontalFlip`."""
            return lambda img: 1 - img

        register("marked_invert", marked)


def test_list_prints_a_third_party_docstring_without_markup(capsys):
    name = register_plugin(_MarkupPlugin(), name="markup-plugin")
    try:
        assert main(["list", "transforms"]) == 0
    finally:
        unregister_plugin(name)
    row = next(r for r in capsys.readouterr().out.splitlines() if r.startswith("marked_invert"))
    assert row.endswith("Invert with p like HorizontalFlip.")
    assert "markup-plugin" in row


def test_run_help_shows_each_protocols_description_in_plain_text(capsys):
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    out = capsys.readouterr().out
    assert "k-fold cross-validation of a snapshot ensemble." in out
    assert "``" not in out and ":class:" not in out and ":func:" not in out
