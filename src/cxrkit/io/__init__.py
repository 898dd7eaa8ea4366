"""Reading chest X-ray images into 2-D float32 arrays in ``[0, 1]``."""

from __future__ import annotations

from ._read import read_xray, resize_image

__all__ = ["read_xray", "resize_image"]
