"""Content keys of the feature cache: what makes two feature vectors the same.

An entry is keyed by ``H(prepared image bytes) + view`` inside a namespace
``H(architecture name, backbone+pool tensors, preprocessing)``: every epoch,
snapshot, CV fold and grid-search candidate with the same backbone weights and
preprocessing finds the features another one computed.
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
import torch

from ...architectures import CXRNet, Preprocessing

__all__ = [
    "backbone_fingerprint",
    "preprocessing_fingerprint",
    "image_key",
    "namespace_key",
    "hash_bytes",
    "VIEWS",
]

#: The views of an image the cache holds: as given, and flipped horizontally.
VIEWS = ("orig", "hflip")
#: Part of every namespace: bump it when the stored format of a feature changes.
_FORMAT = b"float32-v2"


def _new_hash() -> Any:
    """SHA-256 (hardware-accelerated on current x86 and ARM CPUs, faster than BLAKE2b there), truncated to 128 bits by :func:`hash_bytes`."""
    return hashlib.sha256()


def hash_bytes(*parts: bytes | memoryview) -> str:
    """Hex digest (128 bits) of the concatenated ``parts``."""
    h = _new_hash()
    for p in parts:
        h.update(p)
    return str(h.hexdigest()[:32])


def _tensor_bytes(t: torch.Tensor) -> memoryview:
    """Return the tensor's bytes, without a copy for a contiguous CPU tensor."""
    t = t.detach().to("cpu").contiguous()
    if t.dtype == torch.bfloat16:
        t = t.view(torch.int16)
    return t.numpy().reshape(-1).view(np.uint8).data


def backbone_fingerprint(net: CXRNet) -> str:
    """Hash of the architecture name and the backbone's and pool's tensors.

    Computed once per module: the result is stored on the module together with
    the tensors' version counters and recomputed only when a tensor changed
    in place (e.g. after training an unfrozen backbone).

    Parameters
    ----------
    net : CXRNet
        Network whose ``backbone`` and ``pool`` produce the cached features.

    Returns
    -------
    str
        32 hex digits.
    """
    tensors = [
        (k, v)
        for part in ("backbone", "pool")
        for k, v in getattr(net, part).state_dict(prefix=part + ".").items()
    ]
    versions = tuple(int(getattr(v, "_version", 0)) for _, v in tensors)
    cached = getattr(net, "_cxrkit_fingerprint", None)
    if cached is not None and cached[0] == versions:
        return str(cached[1])
    h = _new_hash()
    h.update(str(getattr(net, "arch_name", type(net).__name__)).encode())
    h.update(repr(net.pool).encode())
    for k, v in tensors:
        h.update(k.encode())
        h.update(str(v.dtype).encode())
        h.update(str(tuple(v.shape)).encode())
        h.update(_tensor_bytes(v))
    fp = str(h.hexdigest()[:32])
    object.__setattr__(net, "_cxrkit_fingerprint", (versions, fp))
    return fp


def preprocessing_fingerprint(prep: Preprocessing) -> str:
    """Return a stable text form of ``prep`` (every field, sorted by name)."""
    return repr(sorted(prep.to_dict().items()))


def namespace_key(net: CXRNet, prep: Preprocessing) -> str:
    """Return the namespace of the features ``net`` computes from images prepared by ``prep``."""
    return hash_bytes(
        backbone_fingerprint(net).encode(), preprocessing_fingerprint(prep).encode(), _FORMAT
    )


def image_key(img: np.ndarray) -> str:
    """Hash of a prepared image's dtype, shape and bytes."""
    a = np.ascontiguousarray(img)
    return hash_bytes(
        str(a.dtype).encode(), str(a.shape).encode(), a.reshape(-1).view(np.uint8).data
    )
