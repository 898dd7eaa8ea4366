"""scikit-learn estimators of cxrkit."""

from ._callbacks import CosineRestarts, EpochAccuracy
from ._classifier import CXRClassifier, resolve_device
from ._recipes import RECIPES

__all__ = ["CXRClassifier", "CosineRestarts", "EpochAccuracy", "RECIPES", "resolve_device"]
