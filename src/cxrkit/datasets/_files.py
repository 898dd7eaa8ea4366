"""Streamed existence checks of image files, for datasets of hundreds of thousands of rows."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from ..errors import ConfigurationError

__all__ = ["MISSING_FILE", "CheckMode", "check_mode", "missing_files", "missing_files_message"]

#: The exclusion reason recorded for listed images that have no file.
MISSING_FILE = "missing image file"

CheckMode = Literal["exists", "decode", "none"]
CheckImages = bool | str

_MODES = ("exists", "decode", "none")


def check_mode(check_images: CheckImages) -> CheckMode:
    """Normalise a loader's ``check_images`` value (``True`` is ``"decode"``, ``False`` ``"none"``)."""
    if check_images is True:
        return "decode"
    if check_images is False or check_images is None:
        return "none"
    if check_images not in _MODES:
        raise ConfigurationError(
            f"The 'check_images' parameter must be True, False or one of {_MODES}. "
            f"Got {check_images!r} instead."
        )
    return check_images  # type: ignore[return-value]


def missing_files(
    paths: Sequence[str] | np.ndarray,
    *,
    progress: bool | None = None,
    desc: str = "checking image files",
) -> np.ndarray:
    """Which of ``paths`` do not exist, listing each folder once.

    Parameters
    ----------
    paths : sequence of str
        Absolute file paths.
    progress : bool or None, default=None
        Show a progress bar (``None``: only on a terminal).
    desc : str
        Progress-bar label.

    Returns
    -------
    ndarray of bool, shape (n,)
        ``True`` where the file is absent.

    Notes
    -----
    Paths are grouped by folder and each folder is listed once with
    :func:`os.scandir`, which is much faster than one ``stat`` per file on
    network file systems; nothing is decoded or held in memory but the names.
    """
    s = pd.Series(np.asarray(paths, dtype=object), dtype=object).astype(str)
    missing = np.zeros(len(s), dtype=bool)
    if len(s) == 0:
        return missing
    split = s.str.rpartition(os.sep)
    dirs, names = split[0], split[2]
    codes, uniq = pd.factorize(dirs, sort=False)
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(len(uniq) + 1))
    names_arr = names.to_numpy(dtype=object)
    disable = None if progress is None else not progress
    with tqdm(total=len(s), desc=desc, unit="file", disable=disable, mininterval=0.5) as bar:
        for k, folder in enumerate(uniq):
            rows = order[bounds[k] : bounds[k + 1]]
            try:
                with os.scandir(folder or os.sep) as it:
                    present = {e.name for e in it}
            except OSError:
                present = set()
            missing[rows] = [n not in present for n in names_arr[rows]]
            bar.update(len(rows))
    return missing


def missing_files_message(
    paths: Sequence[str], n_total: int, dataset: str, root: str | None, limit: int = 10
) -> str:
    """One message for many missing files: the count, examples and the fixes."""
    shown = "\n  ".join(str(p) for p in list(paths)[:limit])
    more = f"\n  ... and {len(paths) - limit} more" if len(paths) > limit else ""
    return (
        f"{len(paths)} of {n_total} images listed by dataset {dataset!r} have no file"
        f"{f' under {root!r}' if root else ''}, e.g.:\n  {shown}{more}\n"
        "Check root= (the folder of the images as distributed), pass on_error='skip' to "
        "leave them out (counted in the summary), or check_images=False to load the "
        "metadata only."
    )
