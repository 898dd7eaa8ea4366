"""scikit-learn estimators of cxrkit."""

from ._accelerate import AcceleratedCXRClassifier
from ._cache import FeatureCache, clear_feature_cache, feature_cache_stats
from ._callbacks import CosineRestarts, EpochAccuracy, EpochProgress
from ._classifier import CXRClassifier, resolve_device
from ._data import ImageSource, as_image_source, prepare_images, prepare_one, to_tensor
from ._embedder import CXREmbedder, make_linear_probe
from ._feature_net import FeatureAwareNet
from ._onnx import INT8_DEFAULTS, OnnxRuntimePredictor, export_onnx, quantize_onnx_int8
from ._operating_point import OPERATING_POINT_FILENAME, read_operating_point, write_operating_point
from ._optim import RMSprop
from ._persist import load_model, save_model
from ._recipes import RECIPES
from ._shards import (
    ShardRun,
    embed_to_shards,
    iter_shards,
    predict_to_shards,
    read_manifest,
    read_shards,
)
from ._snapshot import POLICIES, SnapshotCallback, SnapshotEnsembleClassifier, SnapshotError

__all__ = [
    "AcceleratedCXRClassifier",
    "CXRClassifier",
    "CXREmbedder",
    "CosineRestarts",
    "EpochAccuracy",
    "EpochProgress",
    "FeatureAwareNet",
    "FeatureCache",
    "INT8_DEFAULTS",
    "OPERATING_POINT_FILENAME",
    "ImageSource",
    "OnnxRuntimePredictor",
    "POLICIES",
    "RECIPES",
    "RMSprop",
    "as_image_source",
    "prepare_images",
    "prepare_one",
    "to_tensor",
    "ShardRun",
    "SnapshotCallback",
    "SnapshotEnsembleClassifier",
    "SnapshotError",
    "clear_feature_cache",
    "embed_to_shards",
    "export_onnx",
    "iter_shards",
    "feature_cache_stats",
    "load_model",
    "make_linear_probe",
    "predict_to_shards",
    "quantize_onnx_int8",
    "read_operating_point",
    "read_manifest",
    "read_shards",
    "resolve_device",
    "save_model",
    "write_operating_point",
]
