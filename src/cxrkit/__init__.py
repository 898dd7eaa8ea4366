"""cxrkit: plugin-based, scikit-learn-style chest X-ray classification.

>>> import cxrkit
>>> "hall2020_cnn" in cxrkit.list_architectures()
True
"""

from __future__ import annotations

from .architectures import create_architecture, list_architectures
from .errors import CxrkitError
from .estimators import CXRClassifier
from .hookspecs import hookimpl

__version__ = "0.1.0"

__all__ = [
    "CXRClassifier",
    "CxrkitError",
    "create_architecture",
    "hookimpl",
    "list_architectures",
    "__version__",
]
