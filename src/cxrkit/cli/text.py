"""Plain text from docstrings: the reST markup of a one-line description removed."""

from __future__ import annotations

import re

__all__ = ["plain_text"]

# :role:`title <target>`, :role:`~a.b.C`, :role:`a.b` (Sphinx cross-references).
_ROLE = re.compile(r":[\w:.-]+:`([^`<]*?)\s*(?:<[^`>]*>)?`")
_LITERAL = re.compile(r"``(.+?)``")
_DEFAULT_ROLE = re.compile(r"(?<![\w`])`([^`]+)`(?![\w`])")


def _role_text(match: re.Match[str]) -> str:
    text = match.group(1)
    return text.rsplit(".", 1)[-1] if text.startswith("~") else text.lstrip("!")


def plain_text(text: str) -> str:
    """Remove the reST markup of ``text``: literals, roles and default-role references.

    Parameters
    ----------
    text : str
        A docstring line, e.g. ``"Keep the central ``fraction``."``.

    Returns
    -------
    str
        The same words without markup.

    Examples
    --------
    >>> plain_text("Three blocks (``width``, 2x) see :func:`cxrkit.io.read_xray`.")
    'Three blocks (width, 2x) see cxrkit.io.read_xray.'
    >>> plain_text(":class:`~cxrkit.datasets.CXRDataset` or :func:`loader <load_csv>`")
    'CXRDataset or loader'
    """
    text = _ROLE.sub(_role_text, text)
    text = _LITERAL.sub(r"\1", text)
    text = _DEFAULT_ROLE.sub(r"\1", text)
    return text
