"""The protocols' lung step: guard jobs and a report section with mask overlays."""

from __future__ import annotations

import html
import io
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["lung_guard_jobs", "lung_overlay_section"]

HOW_TO = (
    "No lung segmenter is available, so the lung guards (outside_lungs_probe, "
    "attribution_in_lungs) were skipped. Train one with `cxrkit train-lungs --masks "
    "DIR --out SEGDIR`, then set CXRKIT_LUNG_SEGMENTER=SEGDIR or "
    "`--set lung_segmenter=SEGDIR`; switch them off with `--set lung_guards=false`."
)


def lung_overlay_section(seg: Any, X: Any, n: int = 8) -> Any:
    """Return a ``ReportSection`` with a grid of predicted lung masks and their statistics."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..estimators import as_image_source
    from ..evaluation.results import ReportSection
    from ..segmentation import get_mask_cache

    src = as_image_source(X)
    idx = np.linspace(0, len(src) - 1, min(n, len(src))).astype(int)
    fig, axes = plt.subplots(
        2, -(-len(idx) // 2), figsize=(2.4 * -(-len(idx) // 2), 5), squeeze=False
    )
    for ax in axes.ravel():
        ax.axis("off")
    rows = []
    for ax, i in zip(axes.ravel(), idx):
        img = src.load(int(i))
        res, _ = get_mask_cache().lookup(seg, img)
        ax.imshow(img, cmap="gray")
        if res.mask.any():
            ax.contour(res.mask, levels=[0.5], colors="red", linewidths=1)
        ax.set_title(
            f"#{i} lungs {res.lung_fraction:.2f}" + ("" if res.plausible else " !"), fontsize=8
        )
        rows.append(
            {
                "index": int(i),
                "lung_fraction": round(float(res.lung_fraction), 4),
                "plausible": bool(res.plausible),
                "reason": res.reason,
            }
        )
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80)
    plt.close(fig)
    stats = get_mask_cache().stats()
    body = (
        "<p>Predicted lung masks (red) on evenly spaced images; '!' marks an implausible "
        f"mask (the guards fall back to the whole image).</p><pre>{html.escape(str(stats))}"
        '</pre><img src="lung-masks-overlays.png" alt="lung mask overlays">'
    )
    return ReportSection(
        "lung-masks",
        "Lung masks",
        body,
        {
            "examples": rows,
            "mask_stats": {k: v for k, v in stats.items() if isinstance(v, (int, float, str))},
        },
        {"lung-masks-overlays.png": buf.getvalue()},
    )


def lung_guard_jobs(
    protocol: Any,
    ev: Any,
    probe: Any,
    X: Any,
    y: Any,
    groups: Any,
    cv: Any,
    reference_auc: float | None,
) -> list[tuple[str, Callable[[], Any]]]:
    """Return the lung guards as ``(name, job)`` pairs for the protocol's probe step.

    Empty when ``protocol.lung_guards`` is false; when no segmenter is available
    (``protocol.lung_segmenter`` or ``$CXRKIT_LUNG_SEGMENTER``) an INFO section
    saying how to get one is added to the report instead.
    """
    from ..evaluation.results import ReportSection
    from ..segmentation import default_segmenter, load_segmenter
    from .lungs import attribution_in_lungs, outside_lungs_probe

    if not getattr(protocol, "lung_guards", True):
        return []
    folder = getattr(protocol, "lung_segmenter", None)
    seg = load_segmenter(folder) if folder else default_segmenter(required=False)
    if seg is None:
        ev.result.sections.append(
            ReportSection(
                "lung-masks",
                "Lung masks",
                f"<p>INFO: {html.escape(HOW_TO)}</p>",
                {"status": "skipped", "reason": HOW_TO},
            )
        )
        return []
    try:
        ev.result.sections.append(lung_overlay_section(seg, X))
    except Exception as exc:  # overlays must never hide the run's results
        ev.result.warnings.append(f"Lung mask overlays skipped: {type(exc).__name__}: {exc}")
    jobs = [
        (
            "outside_lungs_probe",
            lambda: outside_lungs_probe(
                probe,
                X,
                y,
                groups,
                cv,
                segmenter=seg,
                reference_auc=reference_auc,
                n_jobs=protocol.n_jobs,
            ),
        )
    ]
    if ev.explain_model is not None:
        ex = ev.explain_X if ev.explain_X is not None else X
        jobs.append(
            (
                "attribution_in_lungs",
                lambda: attribution_in_lungs(
                    ev.explain_model,
                    ex,
                    np.asarray(ev.result.y_true) if ev.explain_X is not None else y,
                    segmenter=seg,
                ),
            )
        )
    return jobs
