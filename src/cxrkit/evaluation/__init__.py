"""cxrkit evaluation: metrics with confidence intervals, run results, Grad-CAM and reports."""

from __future__ import annotations

from typing import TYPE_CHECKING

import lazy_loader

from .gradcam import default_target_layer, gradcam

if TYPE_CHECKING:  # pragma: no cover
    from ._multioutput import compute_multiclass_metrics, compute_multilabel_metrics
    from .metrics import (
        METRIC_NAMES,
        accuracy_score,
        binary_confusion_matrix,
        compute_metrics,
        delong_auc_ci,
        delong_auc_variance,
        make_cxr_scorers,
        npv_at_prevalence,
        per_fold_metrics,
        ppv_at_prevalence,
        roc_auc,
        sensitivity_score,
        specificity_score,
    )
    from .report import fold_summary, format_summary_table, library_versions, write_report
    from .results import RADIOLOGIST_IMAGES_PER_MINUTE, ReportSection, RunResult, model_efficiency

# Submodules are imported on first attribute access (PEP 562), so that importing
# the package (or one light submodule, like its plugin) does not import torch.
__getattr__, _, _ = lazy_loader.attach(
    __name__,
    submod_attrs={
        "_multioutput": ["compute_multiclass_metrics", "compute_multilabel_metrics"],
        "metrics": [
            "METRIC_NAMES",
            "accuracy_score",
            "binary_confusion_matrix",
            "compute_metrics",
            "delong_auc_ci",
            "delong_auc_variance",
            "make_cxr_scorers",
            "npv_at_prevalence",
            "per_fold_metrics",
            "ppv_at_prevalence",
            "roc_auc",
            "sensitivity_score",
            "specificity_score",
        ],
        "report": ["fold_summary", "format_summary_table", "library_versions", "write_report"],
        "results": [
            "RADIOLOGIST_IMAGES_PER_MINUTE",
            "ReportSection",
            "RunResult",
            "model_efficiency",
        ],
    },
)

__all__ = [
    "METRIC_NAMES",
    "RADIOLOGIST_IMAGES_PER_MINUTE",
    "RunResult",
    "ReportSection",
    "accuracy_score",
    "binary_confusion_matrix",
    "compute_metrics",
    "compute_multiclass_metrics",
    "compute_multilabel_metrics",
    "default_target_layer",
    "delong_auc_ci",
    "delong_auc_variance",
    "fold_summary",
    "format_summary_table",
    "gradcam",
    "library_versions",
    "make_cxr_scorers",
    "model_efficiency",
    "npv_at_prevalence",
    "per_fold_metrics",
    "ppv_at_prevalence",
    "roc_auc",
    "sensitivity_score",
    "specificity_score",
    "write_report",
]
