"""Lung-mask data: the real mask folder's loader and synthetic images with known masks."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import DataError

__all__ = ["LungMaskSet", "load_lung_masks", "synthetic_lung_images"]


@dataclass
class LungMaskSet:
    """Images with manual lung masks.

    Attributes
    ----------
    images : ndarray of str
        Image file paths.
    masks : ndarray of str
        Mask file paths (0 outside the lungs, 255 inside), one per image.
    groups : ndarray of str
        Patient ids.
    metadata : pandas.DataFrame
        The folder's ``metadata.csv`` with absolute paths.
    """

    images: np.ndarray
    masks: np.ndarray
    groups: np.ndarray
    metadata: pd.DataFrame

    def __len__(self) -> int:
        return len(self.images)

    def summary(self) -> str:
        """One line: images, patients, lung fraction range."""
        frac = self.metadata.get("lung_fraction")
        extra = (
            f"; lung fraction {frac.min():.3f}-{frac.max():.3f} (median {frac.median():.3f})"
            if frac is not None
            else ""
        )
        return (
            f"{len(self)} images with lung masks from {len(np.unique(self.groups))} patients{extra}"
        )


def load_lung_masks(
    root: str | os.PathLike[str], images_root: str | os.PathLike[str] | None = None
) -> LungMaskSet:
    """Read a lung-mask folder: ``metadata.csv`` (``image``, ``mask``, ``patient_id``) + masks.

    Parameters
    ----------
    root : path
        The folder holding ``metadata.csv`` and ``masks/`` (e.g.
        ``../shared/data/lung-masks``).
    images_root : path, optional
        Folder the ``image`` column is relative to; default ``ROOT/../cxr-dev``.

    Raises
    ------
    DataError
        The table lacks a column, or an image or mask file is missing (all
        missing files are counted and the first ones named).
    """
    root = Path(root)
    table = root / "metadata.csv"
    if not table.is_file():
        raise DataError(
            f"Lung-mask folder '{root}' has no metadata.csv. Pass the folder that "
            "holds metadata.csv and masks/ (e.g. ../shared/data/lung-masks)."
        )
    md = pd.read_csv(table)
    missing_cols = [c for c in ("image", "mask", "patient_id") if c not in md.columns]
    if missing_cols:
        raise DataError(
            f"'{table}' lacks the column(s) {missing_cols}; expected image, mask, "
            "patient_id (image relative to images_root, mask relative to the folder)."
        )
    base = Path(images_root) if images_root is not None else root.parent / "cxr-dev"
    md["image"] = [str(base / p) for p in md["image"]]
    md["mask"] = [str(root / p) for p in md["mask"]]
    absent = [p for p in [*md["image"], *md["mask"]] if not os.path.isfile(p)]
    if absent:
        raise DataError(
            f"{len(absent)} of {2 * len(md)} image and mask files listed in '{table}' "
            f"are missing (first: {absent[:3]}). Check images_root (now '{base}')."
        )
    return LungMaskSet(
        md["image"].to_numpy(dtype=object),
        md["mask"].to_numpy(dtype=object),
        md["patient_id"].astype(str).to_numpy(dtype=object),
        md,
    )


def synthetic_lung_images(
    n: int = 32, size: int = 64, *, random_state: int | None = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Synthetic chest X-rays with two dark elliptical lungs and their exact masks.

    Each image has a bright body, two lungs of random size and position, noise
    and a bright marker outside the lungs; two images per patient.

    Returns
    -------
    images : ndarray of shape (n, size, size), float32 in [0, 1]
    masks : ndarray of shape (n, size, size), bool
    groups : ndarray of shape (n,), patient ids
    """
    rng = np.random.default_rng(random_state)
    yy, xx = np.mgrid[0:size, 0:size] / size
    images = np.empty((n, size, size), np.float32)
    masks = np.zeros((n, size, size), bool)
    for i in range(n):
        cy, h = rng.uniform(0.45, 0.55), rng.uniform(0.25, 0.33)
        gap, w = rng.uniform(0.05, 0.1), rng.uniform(0.14, 0.2)
        for side in (-1, 1):
            cx = 0.5 + side * (gap + w)
            masks[i] |= ((xx - cx) / w) ** 2 + ((yy - cy) / h) ** 2 <= 1
        body = 0.65 + 0.1 * rng.random() - 0.25 * ((xx - 0.5) ** 2 + (yy - 0.5) ** 2)
        img = np.where(masks[i], 0.25 + 0.1 * rng.random(), body)
        img = img + rng.normal(0, 0.05, (size, size))
        r, c = rng.integers(1, max(2, size // 16)), rng.integers(1, size // 2)
        img[r : r + max(1, size // 32), c : c + size // 8] = (
            1.0  # a burned-in marker above the lungs
        )
        images[i] = np.clip(img, 0, 1)
    if not masks.any(axis=(1, 2)).all():
        raise DataError("synthetic_lung_images produced an empty mask; use size >= 16.")
    return images, masks, np.repeat(np.arange((n + 1) // 2), 2)[:n].astype(str)
