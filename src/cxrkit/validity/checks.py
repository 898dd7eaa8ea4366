"""Data-only guards on a dataset-like object (no training): what ``cxrkit check`` runs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..errors import DataError, LeakageError
from ._result import GuardResult, Status
from .confounding import check_confounding
from .duplicates import (
    SIMILARITY_THRESHOLD,
    ImageHashes,
    compute_hashes,
    cross_duplicates,
    find_near_duplicates,
)
from .leakage import check_train_test_leakage

__all__ = ["run_data_checks", "check_dataset", "patient_coverage", "duplicate_guard"]


def _attr(ds: Any, name: str) -> Any:
    value = getattr(ds, name, None)
    if value is None and isinstance(ds, pd.DataFrame):
        col = {"X": "image", "y": "label", "groups": "patient_id"}.get(name)
        if col in ds.columns:
            value = ds[col].to_numpy()
    return value


def _metadata(ds: Any) -> pd.DataFrame | None:
    if isinstance(ds, pd.DataFrame):
        return ds
    md = getattr(ds, "metadata", None)
    return md if isinstance(md, pd.DataFrame) else None


def patient_coverage(groups: Any, n_images: int) -> GuardResult:
    """Check that patient ids are known and count the patients with several images.

    Returns
    -------
    GuardResult
        ``patient_ids``: ``WARN`` when ids are absent (leakage cannot be
        checked) or partly missing, else ``PASS`` with the multi-image counts.
    """
    if groups is None:
        return GuardResult(
            "patient_ids",
            "WARN",
            f"No patient ids for the {n_images} images; patient leakage "
            "cannot be checked and splits cannot be grouped.",
            {"n_images": n_images},
            "Provide a patient_id column; without it, treat every result as possibly inflated.",
        )
    g = pd.Series(np.asarray(groups, dtype=object))
    # Loaders give an image without a patient id its own id, "image:<path>".
    assumed = int(g.astype(str).str.startswith("image:").sum())
    g = g.mask(g.astype(str).str.startswith("image:"))
    missing = int(g.isna().sum())
    if assumed == n_images:
        return GuardResult(
            "patient_ids",
            "WARN",
            f"No patient ids for the {n_images} images: every image is "
            "treated as its own patient, so patient-grouped splits cannot prevent leakage "
            "between images of one patient.",
            {"n_images": n_images, "missing_ids": assumed},
            "Give the loader patient ids (a patient_id column, or patient_pattern= for an image "
            "folder); until then, treat every result as possibly inflated.",
        )
    counts = g.dropna().astype(str).value_counts()
    numbers = {
        "n_images": n_images,
        "n_patients": int(len(counts)),
        "patients_with_several_images": int((counts > 1).sum()),
        "images_of_those_patients": int(counts[counts > 1].sum()),
        "max_images_per_patient": int(counts.max()) if len(counts) else 0,
        "missing_ids": missing,
    }
    summary = (
        f"{numbers['n_patients']} patients for {n_images} images; "
        f"{numbers['patients_with_several_images']} patients have several images "
        f"({numbers['images_of_those_patients']} images): any split must be grouped by "
        "patient."
    )
    if missing:
        return GuardResult(
            "patient_ids",
            "WARN",
            summary + f" {missing} images have no id.",
            numbers,
            "Give every image a patient id (its own id when unknown).",
        )
    return GuardResult("patient_ids", "PASS", summary, numbers)


def duplicate_guard(
    images: Any,
    groups: Any = None,
    ids: Sequence[Any] | None = None,
    *,
    threshold: float = SIMILARITY_THRESHOLD,
    test_images: Any = None,
    test_ids: Sequence[Any] | None = None,
    max_rows: int = 20,
) -> list[GuardResult]:
    """Near-duplicate guards: within the data and, if given, between it and a test set.

    Within one set, duplicates under different patient ids are a ``WARN``
    (they escape grouped splitting); duplicates of one patient are reported
    only. Any training/test duplicate is a ``FAIL``.
    """
    h = compute_hashes(images, ids)
    out = [_within_set_guard(h, groups, threshold, max_rows)]
    if test_images is not None:
        out.append(_train_test_guard(h, test_images, test_ids, threshold, max_rows))
    return out


def _within_set_guard(h: ImageHashes, groups: Any, threshold: float, max_rows: int) -> GuardResult:
    """Return the ``near_duplicates`` guard for the pairs within one set."""
    pairs = find_near_duplicates(h, threshold=threshold)
    g = None if groups is None else np.asarray(groups, dtype=object).astype(str)
    if g is not None and len(pairs):
        cross = g[pairs["i"].to_numpy()] != g[pairs["j"].to_numpy()]
    else:
        cross = np.ones(len(pairs), bool) if g is None else np.zeros(0, bool)
    numbers = {
        "n_images": len(h),
        "n_pairs": int(len(pairs)),
        "n_pairs_across_patients": int(cross.sum()),
        "threshold": threshold,
        "pairs": _pair_rows(pairs.head(max_rows), g),
    }
    if len(pairs) == 0:
        return GuardResult(
            "near_duplicates",
            "PASS",
            f"No near-duplicate pairs among {len(h)} images.",
            numbers,
        )
    what = (
        f"{int(cross.sum())} of them under different patient ids"
        if g is not None
        else "patient ids unknown"
    )
    status: Status = "WARN" if cross.any() else "PASS"
    return GuardResult(
        "near_duplicates",
        status,
        f"{len(pairs)} near-duplicate pair(s) among {len(h)} images ({what}).",
        numbers,
        "Near-duplicates under different patient ids are usually one patient entered twice: "
        "merge their ids (cxrkit.validity.merge_duplicate_groups) or drop one copy, so that "
        "grouped splits keep the copies together."
        if status == "WARN"
        else "",
    )


def _pair_rows(show: pd.DataFrame, g: np.ndarray | None) -> list[dict[str, Any]]:
    """Return the reported rows of the within-set pairs in ``show``."""
    return [
        {
            "a": str(r.id_a),
            "b": str(r.id_b),
            "similarity": float(r.similarity),
            "phash_distance": int(r.phash_distance),
            "flipped": bool(r.flipped),
            **({"patient_a": str(g[r.i]), "patient_b": str(g[r.j])} if g is not None else {}),
        }
        for r in show.itertuples()
    ]


def _train_test_guard(
    h: ImageHashes,
    test_images: Any,
    test_ids: Sequence[Any] | None,
    threshold: float,
    max_rows: int,
) -> GuardResult:
    """Return the ``train_test_duplicates`` guard (FAIL on any training/test copy)."""
    ht = compute_hashes(test_images, test_ids)
    cp = cross_duplicates(h, ht, threshold=threshold)
    crow = [
        {
            "train": str(r.id_a),
            "test": str(r.id_b),
            "similarity": float(r.similarity),
            "flipped": bool(r.flipped),
        }
        for r in cp.head(max_rows).itertuples()
    ]
    n_test = int(cp["j"].nunique()) if len(cp) else 0
    nums = {
        "n_train": len(h),
        "n_test": len(ht),
        "n_pairs": int(len(cp)),
        "n_test_images_with_copy": n_test,
        "pairs": crow,
    }
    if len(cp):
        return GuardResult(
            "train_test_duplicates",
            "FAIL",
            f"{n_test} of {len(ht)} test images have a near-duplicate in the training data.",
            nums,
            "Remove those test images (or their training copies); the test score "
            "includes images the model was trained on.",
        )
    return GuardResult(
        "train_test_duplicates",
        "PASS",
        f"No test image has a near-duplicate among {len(h)} training images.",
        nums,
    )


def run_data_checks(
    dataset_like: Any,
    test: Any = None,
    *,
    duplicates: bool = True,
    confounding: bool = True,
    threshold: float = SIMILARITY_THRESHOLD,
) -> list[GuardResult]:
    """All data-only guards (no training): patient ids, leakage, duplicates, confounding.

    Parameters
    ----------
    dataset_like : object with ``X``, ``y``, ``groups`` and ``metadata``, or a DataFrame
        Any object with those attributes (``cxrkit.datasets.CXRDataset``); a
        DataFrame is read through its ``image``/``label``/``patient_id`` columns.
        Relative image paths must already be resolved by the loader.
    test : dataset-like, optional
        An unseen test set: patient leakage and near-duplicates between the two
        are checked too.
    duplicates : bool, default=True
        Hash the images (a few seconds per thousand images).
    confounding : bool, default=True
    threshold : float, default=0.96
        Near-duplicate similarity threshold.

    Returns
    -------
    list of GuardResult
        ``patient_ids``, [``train_test_leakage``], ``near_duplicates``,
        [``train_test_duplicates``], ``confounding:<column>`` ...
    """
    X, y, groups = _attr(dataset_like, "X"), _attr(dataset_like, "y"), _attr(dataset_like, "groups")
    if X is None or y is None:
        raise DataError(
            f"run_data_checks needs an object with X and y (a cxrkit dataset) or a DataFrame "
            f"with 'image' and 'label' columns; got {type(dataset_like).__name__}."
        )
    results = [patient_coverage(groups, len(y))]
    if test is not None:
        tg = _attr(test, "groups")
        if groups is None or tg is None:
            results.append(
                GuardResult(
                    "train_test_leakage",
                    "WARN",
                    "Patient ids missing on one side; train/test "
                    "patient overlap cannot be checked.",
                    {},
                    "Provide patient ids for both sets.",
                )
            )
        else:
            try:
                check_train_test_leakage(groups, tg)
                results.append(
                    GuardResult(
                        "train_test_leakage",
                        "PASS",
                        "No patient has images in both the training and the test set.",
                        {"n_shared_patients": 0},
                    )
                )
            except LeakageError as exc:
                shared = np.intersect1d(
                    np.asarray(groups, dtype=object).astype(str),
                    np.asarray(tg, dtype=object).astype(str),
                )
                results.append(
                    GuardResult(
                        "train_test_leakage",
                        "FAIL",
                        str(exc),
                        {
                            "n_shared_patients": int(len(shared)),
                            "example_patients": shared[:10].tolist(),
                        },
                        "Remove the shared patients from one side.",
                    )
                )
    if duplicates:
        ids = None
        md = _metadata(dataset_like)
        if md is not None and "image" in md.columns and len(md) == len(y):
            ids = md["image"].astype(str).tolist()
        test_X = _attr(test, "X") if test is not None else None
        results += duplicate_guard(X, groups, ids, threshold=threshold, test_images=test_X)
    if confounding:
        md = _metadata(dataset_like)
        if md is not None:
            results += check_confounding(md, np.asarray(y))
    return results


def check_dataset(ds: Any, test: Any = None, **kwargs: Any) -> list[GuardResult]:
    """Alias of :func:`run_data_checks` for a ``CXRDataset`` (duck-typed)."""
    return run_data_checks(ds, test, **kwargs)
