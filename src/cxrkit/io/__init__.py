"""Reading chest X-ray images into 2-D float32 arrays in ``[0, 1]``."""

from ._loader import GLOBAL_CACHE, DecodeCache, XRayLoader, format_failures
from ._read import INTERPOLATIONS, MIN_SIDE, read_xray, read_xray_bytes, resize_image

__all__ = [
    "DecodeCache",
    "GLOBAL_CACHE",
    "INTERPOLATIONS",
    "MIN_SIDE",
    "XRayLoader",
    "format_failures",
    "read_xray",
    "read_xray_bytes",
    "resize_image",
]
