"""Reading chest X-ray images into 2-D float32 arrays in ``[0, 1]``."""

from ._loader import GLOBAL_CACHE, DecodeCache, XRayLoader, format_failures
from ._named import resolve_transforms
from ._pool import map_collecting_errors, prefetched_chunks
from ._read import INTERPOLATIONS, MIN_SIDE, read_xray, read_xray_bytes, resize_image

__all__ = [
    "DecodeCache",
    "GLOBAL_CACHE",
    "INTERPOLATIONS",
    "MIN_SIDE",
    "XRayLoader",
    "format_failures",
    "map_collecting_errors",
    "prefetched_chunks",
    "read_xray",
    "read_xray_bytes",
    "resize_image",
    "resolve_transforms",
]
