"""Proving that test labels are not read before predictions are made."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from ..errors import LeakageError

__all__ = ["SealedLabels", "TestLabelAccessError"]


class TestLabelAccessError(LeakageError):
    """Labels of test images were read while they were sealed."""

    __test__ = False  # not a pytest test class


class SealedLabels:
    """Labels some of which are sealed: reading a sealed label raises.

    Wrap ``y`` in it and pass it wherever ``y`` goes (``cross_val_predict``,
    a protocol). Metadata (``len``, ``shape``, ``dtype``) stays readable;
    indexing that touches a sealed position, iterating or converting the whole
    array (``np.asarray``) raises :class:`TestLabelAccessError` while anything is
    sealed. Seal the test part before training and unseal it once its
    predictions exist.

    Parameters
    ----------
    y : array-like of shape (n,)
    sealed : array-like of int, optional
        Positions sealed from the start (e.g. an unseen test set).

    Attributes
    ----------
    reads : list of ndarray
        Positions read through indexing (for assertions).

    Examples
    --------
    >>> y = SealedLabels(["a", "b", "c"], sealed=[2])
    >>> y[[0, 1]].tolist()
    ['a', 'b']
    >>> y[[1, 2]]
    Traceback (most recent call last):
    ...
    cxrkit.validity.isolation.TestLabelAccessError: 1 sealed test label(s) were read ...
    >>> y.unseal(); y[[1, 2]].tolist()
    ['b', 'c']
    """

    def __init__(self, y: Any, sealed: Any = None) -> None:
        self._y = np.asarray(y)
        self._sealed = np.zeros(len(self._y), bool)
        self.reads: list[np.ndarray] = []
        if sealed is not None:
            self.seal(sealed)

    # metadata is fine to read
    def __len__(self) -> int:
        return len(self._y)

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of the sealed labels."""
        return self._y.shape

    @property
    def dtype(self) -> np.dtype:
        """Dtype of the sealed labels."""
        return self._y.dtype

    @property
    def ndim(self) -> int:
        """Number of dimensions of the sealed labels."""
        return self._y.ndim

    @property
    def is_sealed(self) -> bool:
        """Whether any label is sealed now."""
        return bool(self._sealed.any())

    def seal(self, idx: Any) -> None:
        """Seal the labels at positions ``idx`` (adds to those sealed)."""
        self._sealed[np.asarray(idx, dtype=int)] = True

    def unseal(self, idx: Any = None) -> None:
        """Unseal the labels at ``idx`` (all when ``None``)."""
        if idx is None:
            self._sealed[:] = False
        else:
            self._sealed[np.asarray(idx, dtype=int)] = False

    @contextmanager
    def sealed(self, idx: Any) -> Iterator[SealedLabels]:
        """Context manager: seal ``idx`` inside the block, unseal on exit."""
        self.seal(idx)
        try:
            yield self
        finally:
            self.unseal(idx)

    def _raise(self, n: int) -> None:
        raise TestLabelAccessError(
            f"{n} sealed test label(s) were read before their predictions were made. "
            "Model, snapshot and threshold selection may only use training/validation labels; "
            "read test labels only to score finished predictions."
        )

    def __getitem__(self, key: Any) -> Any:
        pos = np.arange(len(self._y))[key]
        hit = int(np.count_nonzero(self._sealed[pos]))
        if hit:
            self._raise(hit)
        self.reads.append(np.atleast_1d(pos))
        return self._y[key]

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        if self.is_sealed:
            self._raise(int(self._sealed.sum()))
        return self._y if dtype is None else self._y.astype(dtype)

    def __iter__(self) -> Iterator[Any]:
        if self.is_sealed:
            self._raise(int(self._sealed.sum()))
        return iter(self._y)

    def __repr__(self) -> str:
        return f"SealedLabels(n={len(self._y)}, sealed={int(self._sealed.sum())})"
