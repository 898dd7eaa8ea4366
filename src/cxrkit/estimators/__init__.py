"""scikit-learn estimators of cxrkit."""

from ._callbacks import CosineRestarts, EpochAccuracy
from ._classifier import CXRClassifier, resolve_device
from ._feature_cache import (
    FeatureAwareNet,
    FeatureCache,
    clear_feature_cache,
    feature_cache_stats,
)
from ._recipes import RECIPES

__all__ = ["CXRClassifier", "CosineRestarts", "EpochAccuracy", "RECIPES", "resolve_device",
           "FeatureAwareNet", "FeatureCache", "clear_feature_cache", "feature_cache_stats"]
