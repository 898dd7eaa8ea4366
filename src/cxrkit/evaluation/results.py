"""What a protocol run produces: the input of every report."""

from __future__ import annotations

import numbers
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import DataError

__all__ = [
    "RunResult",
    "ReportSection",
    "model_efficiency",
    "RADIOLOGIST_IMAGES_PER_MINUTE",
    "GRADCAM_KINDS",
    "VALIDITY_STATUSES",
]

#: A radiologist's reading speed used by the opacity study (images per minute).
RADIOLOGIST_IMAGES_PER_MINUTE = 1.75
#: Kinds of Grad-CAM examples, by the outcome of the prediction.
GRADCAM_KINDS = ("TP", "FP", "TN", "FN")
#: Status values of a validity guard.
VALIDITY_STATUSES = ("PASS", "WARN", "FAIL")


def describe_hardware(eff: dict[str, Any]) -> str:
    """Where an efficiency figure was measured, e.g. ``"cpu, 2 torch threads"``."""
    parts = [str(eff.get("device") or "this machine")]
    threads = eff.get("threads")
    if threads:
        parts.append(
            f"{threads} torch thread{'s' if threads != 1 else ''}"
            + (" per process" if eff.get("processes", 1) > 1 else "")
        )
    if eff.get("processes", 1) > 1:
        parts.append(f"{eff['processes']} worker processes, figure per process")
    return ", ".join(parts)


def model_efficiency(
    n_images: int,
    seconds: float,
    radiologist_ipm: float = RADIOLOGIST_IMAGES_PER_MINUTE,
    device: str | None = None,
    threads: int | None = None,
    processes: int = 1,
) -> dict[str, Any]:
    """Images per minute of the model and its ratio to a radiologist's speed.

    The opacity study's definition: the model's throughput in images per
    minute, measured on this hardware, divided by a radiologist's 1.75 images
    per minute.

    Parameters
    ----------
    n_images : int
        Images classified in the timed run.
    seconds : float
        Wall-clock seconds the run took (> 0).
    radiologist_ipm : float, default=1.75
        A radiologist's images per minute.
    device : str, optional
        Where the model ran (``"cpu"``, ``"cuda"``...), recorded as given.
    threads : int, optional
        Intra-op (torch) threads of the timed process: a CPU figure depends on
        it (folds run by ``n_jobs`` worker processes predict with one thread
        each), so reports state it.
    processes : int, default=1
        How many processes the timed predictions ran in (``seconds`` is their
        summed time, so the figure is per process).

    Returns
    -------
    dict
        ``images_per_minute``, ``radiologist_images_per_minute``, ``ratio``,
        ``device``, ``threads``, ``processes``, ``n_images``, ``seconds``.

    Examples
    --------
    >>> model_efficiency(350, 60.0)["ratio"]
    200.0
    """
    if not isinstance(n_images, numbers.Integral) or n_images < 1:
        raise DataError(f"n_images must be a positive int; got {n_images!r}.")
    if not isinstance(seconds, numbers.Real) or not seconds > 0:
        raise DataError(f"seconds must be a positive number (the measured time); got {seconds!r}.")
    if threads is not None and (not isinstance(threads, numbers.Integral) or threads < 1):
        raise DataError(f"threads must be None or a positive int; got {threads!r}.")
    if not isinstance(processes, numbers.Integral) or processes < 1:
        raise DataError(f"processes must be a positive int; got {processes!r}.")
    if not isinstance(radiologist_ipm, numbers.Real) or not radiologist_ipm > 0:
        raise DataError(f"radiologist_ipm must be a positive number; got {radiologist_ipm!r}.")
    ipm = 60.0 * int(n_images) / float(seconds)
    return {
        "images_per_minute": ipm,
        "radiologist_images_per_minute": float(radiologist_ipm),
        "ratio": ipm / float(radiologist_ipm),
        "device": device,
        "threads": None if threads is None else int(threads),
        "processes": int(processes),
        "n_images": int(n_images),
        "seconds": float(seconds),
    }


@dataclass
class ReportSection:
    """A section that a protocol step or a plugin adds to a run's report.

    Sections are how a protocol extends ``report.html`` and ``metrics.json``
    without editing the report writer: each appears after the built-in
    sections, in order, under its title.

    Attributes
    ----------
    key : str
        Identifier (lower-case, ``[a-z0-9_-]``): the section's key under
        ``"sections"`` in ``metrics.json``, its HTML anchor and the prefix of
        its figure files.
    title : str
        Heading shown in the report (escaped when written).
    html : str
        The section's body, **already escaped** markup (build it with a jinja2
        template with autoescaping, or escape every user string with
        :func:`html.escape`). Figures are referenced by their file names,
        e.g. ``<img src="clinical-calibration.png">``.
    data : dict
        The section's figures in JSON-serialisable form (written to
        ``metrics.json`` under ``sections[key]``).
    figures : dict of str to bytes
        PNG files to write beside the report: file name (must start with
        ``key`` and end in ``.png``) to its bytes.
    """

    key: str
    title: str
    html: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    figures: dict[str, bytes] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[a-z0-9][a-z0-9_-]*", self.key or ""):
            raise DataError(
                f"ReportSection key {self.key!r} is not a valid identifier; expected lower-case "
                "letters, digits, '-' or '_' (e.g. 'clinical')."
            )
        for name in self.figures:
            if not (
                name.startswith(self.key)
                and name.endswith(".png")
                and "/" not in name
                and "\\" not in name
            ):
                raise DataError(
                    f"ReportSection {self.key!r}: figure file name {name!r} must start with "
                    f"{self.key!r}, end in '.png' and name no folder."
                )


@dataclass
class RunResult:
    """Everything a protocol run produced, in the form the reports read.

    Attributes
    ----------
    protocol : str
        Registered protocol name (e.g. ``"hall2020-cv"``).
    config : dict
        The exact configuration of the run (JSON-serialisable values); a
        ``"seed"`` or ``"random_state"`` key is reported as the seed.
    positive_label : str
        The label scored by ``y_score`` (multi-output runs: the findings or
        classes, as text).
    classes : list of str
        Both labels, negative first; the ``k`` findings or classes, in the
        column order of ``y_score``, for a multi-output run.
    images : list of str
        Image ids or paths, one per prediction.
    y_true : ndarray of shape (n,) or (n, k)
        True labels; multi-label: 1, 0 or NaN (not evaluated) per finding.
    y_score : ndarray of shape (n,) or (n, k)
        Probability of ``positive_label`` (pooled out-of-fold for CV protocols);
        ``(n, k)``, one column per class or finding, for multi-class and
        multi-label runs (:attr:`task`).
    groups : ndarray of shape (n,) or None
        Patient ids.
    folds : ndarray of shape (n,) or None
        Fold index of each image; ``None`` for a single train/test split.
    per_fold : list of dict
        Per-fold figures, e.g. from :func:`cxrkit.evaluation.metrics.per_fold_metrics`
        (``{"fold", "n_images", "auc", "sensitivity", ...}``; values may be plain floats
        or ``{"value": ...}`` dicts).
    metrics : dict
        Pooled figures from :func:`cxrkit.evaluation.metrics.compute_metrics`.
    data_summary : dict
        Counts per class, patients, sources... (free form, shown as a table).
    validity : list of dict
        Guard results: ``{"name", "status" ("PASS"|"WARN"|"FAIL"), "summary",
        "numbers", "advice"}``.
    efficiency : dict or None
        From :func:`model_efficiency`.
    gradcam : list of dict
        Examples: ``{"id" (image id or path), "label", "score", "kind"
        ("TP"|"FP"|"TN"|"FN"), "image" (2-D float array, the network input in
        display scale), "heatmap" (2-D float array in [0, 1], same shape)}``.
    warnings : list of str
        Things the reader must know (shown in red), e.g. "folds were not grouped
        by patient".
    extra : dict
        Anything else a protocol wants to keep (included in ``metrics.json``).
    sections : list of ReportSection
        Extra report sections (clinical validation, lung fields, ...), shown
        after the built-in ones and written to ``metrics.json`` under
        ``"sections"``.
    """

    protocol: str
    config: dict[str, Any]
    positive_label: str
    classes: list[str]
    images: list[str]
    y_true: np.ndarray
    y_score: np.ndarray
    groups: np.ndarray | None = None
    folds: np.ndarray | None = None
    per_fold: list[dict[str, Any]] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    data_summary: dict[str, Any] = field(default_factory=dict)
    validity: list[dict[str, Any]] = field(default_factory=list)
    efficiency: dict[str, Any] | None = None
    gradcam: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    sections: list[ReportSection] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.y_true = np.asarray(self.y_true)
        self.y_score = np.asarray(self.y_score, dtype=np.float64)
        self.images = [str(i) for i in self.images]
        n = len(self.y_true)
        checks = {"y_score": len(self.y_score), "images": len(self.images)}
        if self.groups is not None:
            self.groups = np.asarray(self.groups)
            checks["groups"] = len(self.groups)
        if self.folds is not None:
            self.folds = np.asarray(self.folds)
            checks["folds"] = len(self.folds)
        for name, m in checks.items():
            if m != n:
                raise DataError(
                    f"RunResult: {name} has {m} entries but y_true has {n}; every per-image "
                    "array must have one entry per prediction."
                )
        if self.y_score.ndim == 2 and self.y_score.shape[1] != len(self.classes):
            raise DataError(
                f"RunResult: y_score has {self.y_score.shape[1]} columns but classes names "
                f"{len(self.classes)}; a multi-output y_score has one column per class or finding."
            )
        if self.y_true.ndim == 2 and self.y_true.shape != self.y_score.shape:
            raise DataError(
                f"RunResult: a multi-label y_true {self.y_true.shape} must have the shape of "
                f"y_score {self.y_score.shape}."
            )
        keys = [s.key for s in self.sections]
        if len(set(keys)) != len(keys):
            raise DataError(f"RunResult: report section keys must be unique; got {keys}.")
        for v in self.validity:
            if v.get("status") not in VALIDITY_STATUSES:
                raise DataError(
                    f"RunResult: validity result {v.get('name')!r} has status "
                    f"{v.get('status')!r}; expected one of {VALIDITY_STATUSES}."
                )

    @property
    def task(self) -> str:
        """``"binary"``; ``"multiclass"`` when ``y_score`` is ``(n, k)`` and ``y_true`` one label per image; ``"multilabel-indicator"`` when both are ``(n, k)``."""
        if self.y_score.ndim != 2:
            return "binary"
        return "multilabel-indicator" if self.y_true.ndim == 2 else "multiclass"

    @property
    def n_images(self) -> int:
        """Number of predictions."""
        return len(self.y_true)

    @property
    def seed(self) -> Any:
        """The run's seed as found in ``config`` (``seed`` or ``random_state``), else None."""
        for key in ("seed", "random_state"):
            if key in self.config:
                return self.config[key]
        return None
