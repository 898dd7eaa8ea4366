"""The ``synthetic`` dataset: chest-X-ray-like images, generated, deterministic by seed.

Each image has a body outline, two dark lung fields, ribs, a spine and
mediastinum, a heart shadow and the diaphragm domes, with acquisition noise and
exposure differences. The positive class (``covid`` by default) carries
bilateral, peripheral, lower-zone, patchy ground-glass opacities (the pattern
reported for COVID-19 pneumonia); the negative class (``pneumonia``) carries a
lobar consolidation in one lung (upper or lower zone) or clear lungs.
``difficulty`` weakens the opacities, adds noise and adds look-alike findings
(faint patches in some negatives, unilateral patches in some positives).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

import numpy as np
import pandas as pd
from PIL import Image

from ..errors import ConfigurationError
from ._dataset import CXRDataset
from ._finalize import finalize_dataset

__all__ = ["make_synthetic_cxr", "load_synthetic", "DEFAULT_DIFFICULTY"]

#: Calibrated so that ``CXRClassifier("tiny_cnn", input_size=64, max_epochs=5)``
#: is clearly better than chance but not perfect (see docs/datasets/synthetic.md).
DEFAULT_DIFFICULTY = 0.27


def _check(name: str, value: object, ok: bool, expected: str) -> None:
    if not ok:
        raise ConfigurationError(
            f"The {name!r} parameter of the synthetic dataset must be {expected}. Got {value!r} instead."
        )


def _upsample(noise: np.ndarray, size: int) -> np.ndarray:
    img = Image.fromarray(noise.astype(np.float32), mode="F")
    return np.asarray(img.resize((size, size), Image.Resampling.BILINEAR), dtype=np.float32)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 + 0.5 * np.tanh(0.5 * x)


def _anatomy(pat: dict, size: int, view: str) -> dict:
    """Return the patient's chest without findings (computed once per patient and view)."""
    lin = np.linspace(-1.0, 1.0, size, dtype=np.float32)
    # the patient's build and position in the detector field
    sc, du, dv = (np.float32(x) for x in pat.get("frame", (1.0, 0.0, 0.0)))
    u = (lin[None, :] - du) / sc
    v = (lin[:, None] - dv) / sc
    edge = np.float32(size / 12.0)  # sharpness of outlines
    f = np.float32

    img = np.full((size, size), 0.06, np.float32)
    body = _sigmoid((1 - (u / f(pat["body_w"])) ** 2 - ((v - f(0.1)) / f(1.05)) ** 2) * edge)
    img += f(0.42) * body
    if "tissue" in pat:  # soft tissue and habitus: smooth, patient-specific shading
        img += f(0.3) * (_upsample(pat["tissue"], size) - f(0.5)) * body
    # spine / mediastinum
    img += f(0.16) * _sigmoid((f(0.11) - np.abs(u)) * edge * 3) * body
    lungs = np.zeros_like(img)
    lung_masks = []
    for side in (-1, 1):
        cu, lw, lh = f(side * pat["lung_cu"]), f(pat["lung_w"]), f(pat["lung_h"])
        m = _sigmoid((1 - ((u - cu) / lw) ** 2 - ((v + f(0.05)) / lh) ** 2) * edge)
        # the diaphragm dome cuts the bottom of each lung (the left one lies lower)
        dome = f(pat["dome"]) + f(0.22) * ((u - cu) / lw) ** 2 + f(0.04 if side < 0 else 0.0)
        m = m * _sigmoid((dome - v) * edge * 2)
        lung_masks.append(m)
        lungs = np.maximum(lungs, m)
    img -= f(0.30) * lungs
    # ribs: curved bright bands across the lungs
    ribs = np.sin(f(2 * np.pi) * (f(pat["rib_freq"]) * (v + f(0.35) * u**2) + f(pat["rib_phase"])))
    img += f(0.07) * np.clip(ribs, 0, None) ** 2 * lungs
    # heart, magnified on AP views
    hs = 1.15 if view.upper().startswith("AP") else 1.0
    heart = _sigmoid(
        (
            1
            - ((u - f(0.1)) / f(pat["heart_w"] * hs)) ** 2
            - ((v - f(0.2)) / f(pat["heart_h"] * hs)) ** 2
        )
        * edge
    )
    img += f(0.15) * heart * body
    return {"img": img, "lungs": lungs, "lung_masks": lung_masks, "u": u, "v": v, "edge": edge}


def _shift(img: np.ndarray, dy: int, dx: int) -> np.ndarray:
    if dy == 0 and dx == 0:
        return img
    h, w = img.shape
    p = max(abs(dy), abs(dx))
    padded = np.pad(img, p, mode="edge")
    return padded[p - dy : p - dy + h, p - dx : p - dx + w]


def _one_image(
    rng: np.random.Generator,
    pat: dict,
    anat: dict,
    size: int,
    positive: bool,
    source_idx: int,
    n_sources: int,
    difficulty: float,
) -> np.ndarray:
    u, v, edge, lungs, lung_masks = (
        anat["u"],
        anat["v"],
        anat["edge"],
        anat["lungs"],
        anat["lung_masks"],
    )
    img = anat["img"].copy()
    strength = 1.0 - 0.75 * difficulty
    tex_lo = rng.random((max(2, size // 10), max(2, size // 10))).astype(np.float32)
    texture = _upsample(tex_lo, size)  # patchiness in [0, 1]

    def blob(cu: float, cv: float, su: float, sv: float) -> np.ndarray:
        return np.exp(
            np.float32(-0.5)
            * (
                ((u - np.float32(cu)) / np.float32(su)) ** 2
                + ((v - np.float32(cv)) / np.float32(sv)) ** 2
            )
        )

    def ground_glass(n: int, sides: Sequence[int], amp: float) -> np.ndarray:
        acc = np.zeros_like(img)
        for k in range(n):
            side = sides[k % len(sides)]
            cu = side * (pat["lung_cu"] + pat["lung_w"] * rng.uniform(0.35, 0.75))
            cv = rng.uniform(-0.1, 0.22)
            acc += blob(cu, cv, rng.uniform(0.09, 0.16), rng.uniform(0.1, 0.18))
        return (
            np.float32(amp) * np.clip(acc, 0, 1) * (np.float32(0.35) + np.float32(0.65) * texture)
        )

    opacity = np.zeros_like(img)
    if positive:
        if rng.random() < 0.3 * difficulty:  # look-alike: unilateral
            opacity += ground_glass(
                int(rng.integers(2, 4)), [int(rng.choice([-1, 1]))], 0.6 * strength
            )
        else:
            opacity += ground_glass(int(rng.integers(3, 7)), [-1, 1], 0.6 * strength)
    else:
        if not pat["clear"]:
            side = pat["cons_side"]
            m = lung_masks[0 if side < 0 else 1]
            split = np.float32(pat["fissure"] + rng.normal(0, 0.03))
            zone = (
                _sigmoid((v - split) * edge * 2)
                if pat["cons_lower"]
                else _sigmoid((split - v) * edge * 2)
            )
            dens = 0.75 + 0.25 * texture
            opacity += np.float32(0.3 * strength) * zone * m * dens
        if rng.random() < 0.5 * difficulty:  # look-alike: faint patches
            opacity += ground_glass(int(rng.integers(1, 3)), [-1, 1], 0.2 * strength)
    img += opacity * lungs

    # acquisition: source contrast, exposure, noise, burned-in marker
    gamma = np.float32(pat["gamma"] * (1.0 + 0.15 * (source_idx - (n_sources - 1) / 2)))
    img = np.clip(img, 0, 1) ** gamma
    img = img * np.float32(rng.uniform(0.9, 1.1)) + np.float32(rng.normal(0, 0.02))
    noise_sd = 0.03 + 0.07 * difficulty
    img += rng.standard_normal(img.shape, dtype=np.float32) * np.float32(noise_sd)
    # patient positioning: a small shift of the whole picture
    d = rng.normal(0, 0.015 * size, 2)
    img = _shift(img, int(round(d[0])), int(round(d[1])))
    m = max(2, size // 16)
    corner = source_idx % 4
    r0 = 2 if corner < 2 else size - m - 2
    c0 = 2 if corner % 2 == 0 else size - m - 2
    img[r0 : r0 + m, c0 : c0 + m] = 0.95
    return (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8)


def make_synthetic_cxr(
    n_patients: int = 100,
    images_per_patient: int | Sequence[int] = 2,
    *,
    size: int = 128,
    difficulty: float = DEFAULT_DIFFICULTY,
    sources: Sequence[str] = ("site_a", "site_b"),
    views: Sequence[str] = ("PA", "AP"),
    classes: Sequence[str] = ("covid", "pneumonia"),
    prevalence: float = 0.5,
    clear_fraction: float = 0.3,
    source_shortcut: float = 0.0,
    random_state: int | None = 0,
) -> tuple[np.ndarray, pd.DataFrame]:
    """Generate chest-X-ray-like images.

    Parameters
    ----------
    n_patients : int, default=100
    images_per_patient : int or (low, high), default=2
        A fixed number, or a range drawn uniformly per patient (inclusive).
    size : int, default=128
        Side of the square images (any size >= 16).
    difficulty : float in [0, 1], default=0.27
        0 is easy (strong opacities, little noise); 1 is nearly chance.
    sources : sequence of str, default=("site_a", "site_b")
        Acquisition sites; each has its own contrast and a burned-in marker in
        its own corner (a realistic shortcut when correlated with the label).
    views : sequence of str, default=("PA", "AP")
        Drawn per image; AP views have a magnified heart shadow.
    classes : (positive, negative), default=("covid", "pneumonia")
        The positive class carries the COVID-19 pattern.
    prevalence : float, default=0.5
        Fraction of patients in the positive class.
    clear_fraction : float, default=0.3
        Fraction of negative patients with clear lungs (no consolidation).
    source_shortcut : float in [0, 1], default=0.0
        Probability that a patient's source is determined by its class (0: no
        relation; 1: the source gives the class away).
    random_state : int or None, default=0

    Returns
    -------
    images : ndarray of shape (n, size, size), uint8
    metadata : DataFrame
        ``image`` (``synthetic-<patient>-<k>``), ``label``, ``patient_id``,
        ``view``, ``source``, ``sex``, ``age``, ``finding``.
    """
    ipp_lo, ipp_hi = _check_arguments(
        n_patients,
        images_per_patient,
        size,
        difficulty,
        sources,
        views,
        classes,
        prevalence,
        source_shortcut,
    )
    rng = np.random.default_rng(random_state)
    base_seed = _base_seed(random_state)
    n_pos = int(round(prevalence * n_patients))
    is_pos = np.zeros(n_patients, bool)
    is_pos[rng.permutation(n_patients)[:n_pos]] = True
    images, rows = [], []
    for p in range(n_patients):
        pos = bool(is_pos[p])
        if rng.random() < source_shortcut:
            sidx = (0 if pos else 1) % len(sources)
        else:
            sidx = int(rng.integers(len(sources)))
        pat = _draw_patient(rng, base_seed, p, clear_fraction)
        sex = "F" if rng.random() < 0.5 else "M"
        age = int(rng.integers(20, 90))
        k = int(rng.integers(ipp_lo, ipp_hi + 1))
        anatomy: dict[str, dict] = {}
        for j in range(k):
            view = str(views[int(rng.integers(len(views)))])
            if view not in anatomy:
                anatomy[view] = _anatomy(pat, int(size), view)
            images.append(
                _one_image(
                    rng, pat, anatomy[view], int(size), pos, sidx, len(sources), float(difficulty)
                )
            )
            rows.append(
                {
                    "image": f"synthetic-{p:05d}-{j}",
                    "label": classes[0] if pos else classes[1],
                    "patient_id": f"P{p:05d}",
                    "view": view,
                    "source": sources[sidx],
                    "sex": sex,
                    "age": age,
                    "finding": _finding(pos, pat),
                }
            )
    return np.stack(images), pd.DataFrame(rows)


def _check_arguments(
    n_patients: int,
    images_per_patient: int | Sequence[int],
    size: int,
    difficulty: float,
    sources: Sequence[str],
    views: Sequence[str],
    classes: Sequence[str],
    prevalence: float,
    source_shortcut: float,
) -> tuple[int, int]:
    """Validate the arguments of :func:`make_synthetic_cxr`; return the images-per-patient range."""
    _check(
        "n_patients",
        n_patients,
        isinstance(n_patients, (int, np.integer)) and n_patients >= 1,
        "an int >= 1",
    )
    _check("size", size, isinstance(size, (int, np.integer)) and size >= 16, "an int >= 16")
    _check(
        "difficulty",
        difficulty,
        isinstance(difficulty, (int, float)) and 0 <= difficulty <= 1,
        "a float in [0, 1]",
    )
    _check("prevalence", prevalence, 0 <= prevalence <= 1, "a float in [0, 1]")
    _check("source_shortcut", source_shortcut, 0 <= source_shortcut <= 1, "a float in [0, 1]")
    _check(
        "classes", classes, len(classes) == 2 and classes[0] != classes[1], "two distinct labels"
    )
    _check("sources", sources, len(sources) >= 1, "a non-empty sequence")
    _check("views", views, len(views) >= 1, "a non-empty sequence")
    if isinstance(images_per_patient, (int, np.integer)):
        _check("images_per_patient", images_per_patient, images_per_patient >= 1, "an int >= 1")
        return int(images_per_patient), int(images_per_patient)
    ipp_lo, ipp_hi = (int(x) for x in images_per_patient)
    _check(
        "images_per_patient",
        images_per_patient,
        1 <= ipp_lo <= ipp_hi,
        "an int >= 1 or a (low, high) pair with 1 <= low <= high",
    )
    return ipp_lo, ipp_hi


def _base_seed(random_state: int | None) -> int:
    """Return the seed of the per-patient generators (fresh entropy when ``None``)."""
    return (
        int(random_state)
        if random_state is not None
        else int(cast(int, np.random.SeedSequence().entropy)) % (2**32)
    )


def _draw_patient(
    rng: np.random.Generator, base_seed: int, p: int, clear_fraction: float
) -> dict[str, Any]:
    """Draw patient ``p``'s anatomy and findings parameters."""
    pat: dict[str, Any] = {
        "body_w": rng.uniform(0.82, 0.95),
        "lung_cu": rng.uniform(0.36, 0.42),
        "lung_w": rng.uniform(0.25, 0.31),
        "lung_h": rng.uniform(0.5, 0.6),
        "dome": rng.uniform(0.32, 0.42),
        "rib_freq": rng.uniform(4.5, 6.0),
        "rib_phase": rng.uniform(0, 1),
        "heart_w": rng.uniform(0.22, 0.3),
        "heart_h": rng.uniform(0.18, 0.24),
        "gamma": rng.uniform(0.85, 1.15),
        "clear": rng.random() < clear_fraction,
        "cons_side": int(rng.choice([-1, 1])),
        "cons_lower": bool(rng.random() < 0.5),
        "fissure": rng.uniform(-0.1, 0.15),
    }
    # Patient-specific framing and soft tissue come from a generator of their
    # own, so that the main random stream (labels, findings) is unchanged.
    prng = np.random.default_rng([base_seed, p])
    pat["frame"] = (
        prng.uniform(0.85, 1.12),
        prng.uniform(-0.14, 0.14),
        prng.uniform(-0.1, 0.1),
    )
    pat["tissue"] = prng.random((6, 6)).astype(np.float32)
    return pat


def _finding(pos: bool, pat: dict[str, Any]) -> str:
    """Return the radiology-style finding text of one image."""
    if pos:
        return "ground-glass opacities, bilateral, peripheral, lower zones"
    if pat["clear"]:
        return "clear lungs"
    return (
        f"lobar consolidation, {'left' if pat['cons_side'] < 0 else 'right'} "
        f"{'lower' if pat['cons_lower'] else 'upper'} zone"
    )


def load_synthetic(
    root: str | os.PathLike[str] | None = None,
    *,
    n_patients: int = 100,
    images_per_patient: int | Sequence[int] = 2,
    size: int = 128,
    difficulty: float = DEFAULT_DIFFICULTY,
    sources: Sequence[str] = ("site_a", "site_b"),
    views: Sequence[str] = ("PA", "AP"),
    classes: Sequence[str] = ("covid", "pneumonia"),
    prevalence: float = 0.5,
    clear_fraction: float = 0.3,
    source_shortcut: float = 0.0,
    random_state: int | None = 0,
    on_error: str = "raise",
    check_images: bool = False,
) -> CXRDataset:
    """Return the synthetic dataset (see :func:`make_synthetic_cxr` for the parameters).

    With ``root=None`` the images stay in memory (``X`` is a ``uint8`` array of
    shape ``(n, size, size)``); with a folder, PNGs are written to
    ``root/<label>/<image>.png`` and ``X`` holds their paths.
    """
    images, meta = make_synthetic_cxr(
        n_patients,
        images_per_patient,
        size=size,
        difficulty=difficulty,
        sources=sources,
        views=views,
        classes=classes,
        prevalence=prevalence,
        clear_fraction=clear_fraction,
        source_shortcut=source_shortcut,
        random_state=random_state,
    )
    if root is None:
        return finalize_dataset(
            "synthetic", None, meta, None, on_error=on_error, X=images, min_classes=1
        )
    base = Path(root).expanduser().resolve()
    paths = []
    for img, (_, row) in zip(images, meta.iterrows()):
        d = base / str(row["label"])
        d.mkdir(parents=True, exist_ok=True)
        p = d / f"{row['image']}.png"
        Image.fromarray(img).save(p)
        paths.append(str(p))
    meta = meta.assign(image=paths)
    return finalize_dataset(
        "synthetic", str(base), meta, None, on_error=on_error, check=check_images, min_classes=1
    )
