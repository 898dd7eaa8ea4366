"""cxrkit: plugin-based, scikit-learn-style chest X-ray classification.

The names users type most live here::

    from cxrkit import CXRClassifier, SnapshotEnsembleClassifier, load_dataset

>>> import cxrkit
>>> "hall2020_cnn" in cxrkit.list_architectures()
True

Every name is imported on first use, so ``import cxrkit`` stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import lazy_loader

from ._config import config_context, get_config, set_config
from .errors import CxrkitError
from .hookspecs import hookimpl

if TYPE_CHECKING:  # pragma: no cover
    from .architectures import create_architecture, grayscale_first_conv, list_architectures
    from .datasets import CXRDataset, list_datasets, load_dataset, make_synthetic_cxr
    from .ensembles import hall2020_ensemble
    from .estimators import (
        AcceleratedCXRClassifier,
        CXRClassifier,
        CXREmbedder,
        EpochProgress,
        OnnxRuntimePredictor,
        SnapshotEnsembleClassifier,
        clear_feature_cache,
        feature_cache_stats,
        load_model,
        make_linear_probe,
        save_model,
    )
    from .evaluation import (
        ReportSection,
        RunResult,
        compute_metrics,
        format_summary_table,
        gradcam,
        make_cxr_scorers,
        model_efficiency,
        write_report,
    )
    from .evaluation.protocols import create_protocol, list_protocols
    from .importers import load_hall2020_published, load_keras_weights
    from .io import XRayLoader, read_xray
    from .parallel import parallel_backend
    from .transforms import create_transform, list_transforms
    from .validity import GuardResult, run_data_checks

__version__ = "0.1.0"

# The names below are imported on first use (PEP 562), so that ``import cxrkit``
# and the command line's ``cxrkit list`` do not import torch.
__getattr__, _, _ = lazy_loader.attach(
    __name__,
    submod_attrs={
        "architectures": ["create_architecture", "grayscale_first_conv", "list_architectures"],
        "datasets": ["CXRDataset", "list_datasets", "load_dataset", "make_synthetic_cxr"],
        "ensembles": ["hall2020_ensemble"],
        "estimators": [
            "AcceleratedCXRClassifier",
            "CXRClassifier",
            "CXREmbedder",
            "EpochProgress",
            "OnnxRuntimePredictor",
            "SnapshotEnsembleClassifier",
            "clear_feature_cache",
            "feature_cache_stats",
            "load_model",
            "make_linear_probe",
            "save_model",
        ],
        "evaluation": [
            "ReportSection",
            "RunResult",
            "compute_metrics",
            "format_summary_table",
            "gradcam",
            "make_cxr_scorers",
            "model_efficiency",
            "write_report",
        ],
        "evaluation.protocols": ["create_protocol", "list_protocols"],
        "importers": ["load_hall2020_published", "load_keras_weights"],
        "io": ["XRayLoader", "read_xray"],
        "parallel": ["parallel_backend"],
        "transforms": ["create_transform", "list_transforms"],
        "validity": ["GuardResult", "run_data_checks"],
    },
)

__all__ = [
    "AcceleratedCXRClassifier",
    "OnnxRuntimePredictor",
    "CXRClassifier",
    "CXRDataset",
    "CXREmbedder",
    "CxrkitError",
    "EpochProgress",
    "GuardResult",
    "RunResult",
    "ReportSection",
    "SnapshotEnsembleClassifier",
    "XRayLoader",
    "__version__",
    "clear_feature_cache",
    "compute_metrics",
    "config_context",
    "create_architecture",
    "create_protocol",
    "create_transform",
    "feature_cache_stats",
    "format_summary_table",
    "get_config",
    "grayscale_first_conv",
    "gradcam",
    "hall2020_ensemble",
    "hookimpl",
    "list_architectures",
    "list_datasets",
    "list_protocols",
    "list_transforms",
    "load_dataset",
    "load_hall2020_published",
    "load_keras_weights",
    "load_model",
    "make_cxr_scorers",
    "make_linear_probe",
    "make_synthetic_cxr",
    "model_efficiency",
    "parallel_backend",
    "read_xray",
    "run_data_checks",
    "save_model",
    "set_config",
    "write_report",
]
