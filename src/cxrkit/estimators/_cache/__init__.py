"""A content-keyed cache of frozen-backbone features, so only the head is retrained.

When the backbone of a :class:`~cxrkit.architectures.CXRNet` is frozen (its
parameters *and* batch-norm statistics fixed, dropout off) and the only
training-time augmentation is a horizontal flip, the pooled backbone output of
an image never changes during training. :class:`CXRClassifier` then asks
:meth:`FeatureCache.features` for those features once per distinct image and
view (original, flipped) and trains the head on them.

The layers, one module each:

- ``_keys``: content keys and fingerprints (what makes two features the same);
- ``_memory``: the process's in-memory store, an LRU bounded in bytes;
- ``_disk``: the on-disk store of ``.npy`` files, written atomically and
  checked when read, shared by processes (``cache_dir`` or ``CXRKIT_CACHE_DIR``);
- ``_claims``: how processes sharing a disk store split the missing work;
- ``_session``: the private folder worker processes share without ``cache_dir``;
- ``_extract``: computing features, and when cached ones are exact;
- ``_store``: :class:`FeatureCache`, which puts these together;
- ``_dataset``: the dataset and mini-batches the head trains on.
"""

from ._claims import Claim, ClaimPolicy
from ._dataset import FeatureBatches, FeatureDataset
from ._disk import CACHE_DIR_ENV, DiskStore, check_features
from ._extract import compute_features, feature_cache_reason
from ._keys import VIEWS, backbone_fingerprint, image_key, namespace_key
from ._memory import MemoryStore
from ._session import (
    SESSION_ENV,
    join_session,
    resolve_cache_dir,
    session_folder_problem,
    session_for_workers,
    start_session,
    worker_cache_dir,
)
from ._store import (
    CACHE_BYTES_ENV,
    CLAIM_TIMEOUT_ENV,
    DEFAULT_CACHE_BYTES,
    FeatureCache,
    cached_features,
    clear_feature_cache,
    feature_cache_stats,
    get_feature_cache,
)

__all__ = [
    "CACHE_BYTES_ENV",
    "CACHE_DIR_ENV",
    "CLAIM_TIMEOUT_ENV",
    "Claim",
    "ClaimPolicy",
    "DEFAULT_CACHE_BYTES",
    "DiskStore",
    "FeatureBatches",
    "FeatureCache",
    "FeatureDataset",
    "MemoryStore",
    "SESSION_ENV",
    "VIEWS",
    "backbone_fingerprint",
    "cached_features",
    "check_features",
    "clear_feature_cache",
    "compute_features",
    "feature_cache_reason",
    "feature_cache_stats",
    "get_feature_cache",
    "image_key",
    "join_session",
    "namespace_key",
    "resolve_cache_dir",
    "session_folder_problem",
    "session_for_workers",
    "start_session",
    "worker_cache_dir",
]
