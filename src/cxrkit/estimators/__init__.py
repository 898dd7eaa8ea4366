"""scikit-learn estimators of cxrkit."""

from ._callbacks import CosineRestarts, EpochAccuracy
from ._classifier import CXRClassifier, resolve_device
from ._persist import load_model, save_model
from ._recipes import RECIPES
from ._snapshot import POLICIES, SnapshotCallback, SnapshotEnsembleClassifier, SnapshotError

__all__ = [
    "CXRClassifier",
    "CosineRestarts",
    "EpochAccuracy",
    "POLICIES",
    "RECIPES",
    "SnapshotCallback",
    "SnapshotEnsembleClassifier",
    "SnapshotError",
    "load_model",
    "resolve_device",
    "save_model",
]
