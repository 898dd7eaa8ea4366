"""Checking output locations before any work starts.

A report folder, a model folder or a folder of Grad-CAM overlays that cannot be
written should fail in the first second, not after hours of training. These
checks create nothing: they write and remove one temporary file in the
folder itself, or in its nearest existing parent when it does not exist yet
(which is also what catches a read-only file system when running as root).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from .errors import OutputPathError

__all__ = ["check_output_folder", "check_model_destination", "is_model_folder"]


def is_model_folder(path: Path) -> bool:
    """Whether ``path`` holds a model written by :func:`cxrkit.save_model`."""
    return (path / "manifest.json").is_file() or (path / "config.json").is_file()


def _nearest_existing(path: Path) -> Path:
    p = path.absolute()
    while not p.exists() and not p.is_symlink() and p != p.parent:
        p = p.parent
    return p


def check_output_folder(path: str | os.PathLike[str], what: str = "output folder") -> Path:
    """Raise :class:`OutputPathError` unless files can be written in ``path``.

    Parameters
    ----------
    path : path
        A folder that exists, or that can be created.
    what : str, default="output folder"
        How the message names it (e.g. ``"--out"``).

    Returns
    -------
    Path
        ``path``.
    """
    target = Path(path)
    base = _nearest_existing(target)
    if not base.is_dir():
        kind = "does not exist" if not base.exists() else "is a file, not a folder"
        raise OutputPathError(
            f"{what} '{target}' cannot be written: '{base}' {kind}. Choose another folder."
        )
    try:
        with tempfile.TemporaryFile(dir=base):
            pass
    except OSError as exc:
        raise OutputPathError(
            f"{what} '{target}' cannot be written: '{base}' is not writable "
            f"({exc.strerror or exc}). Choose another folder or fix its permissions."
        ) from None
    return target


def check_model_destination(path: str | os.PathLike[str], what: str = "model folder") -> Path:
    """Like :func:`check_output_folder`, and refuse a non-empty folder that :func:`cxrkit.save_model` would not replace (one that holds neither a model nor only model folders)."""
    target = Path(path)
    if target.is_dir():
        entries = list(target.iterdir())
        if (
            entries
            and not is_model_folder(target)
            and not all(e.is_dir() and is_model_folder(e) for e in entries)
        ):
            raise OutputPathError(
                f"{what} '{target}' exists and is not a cxrkit model folder; saving would "
                "replace its contents. Choose another folder or remove it."
            )
    check_output_folder(target, what)
    if target.exists():  # the new model is written next to it, then swapped in
        check_output_folder(target.parent, f"the folder holding {what}")
    return target
