"""cxrkit: plugin-based, scikit-learn-style chest X-ray classification.

>>> import cxrkit
>>> "hall2020_cnn" in cxrkit.list_architectures()
True
"""

from __future__ import annotations

from .architectures import create_architecture, list_architectures
from .errors import CxrkitError
from .estimators import CXRClassifier, SnapshotEnsembleClassifier, load_model, save_model
from .hookspecs import hookimpl
from .ensembles import hall2020_ensemble

__version__ = "0.1.0"

__all__ = [
    "CXRClassifier",
    "SnapshotEnsembleClassifier",
    "load_model",
    "save_model",
    "CxrkitError",
    "create_architecture",
    "hall2020_ensemble",
    "hookimpl",
    "list_architectures",
    "__version__",
]
