"""What the head trains on: cached feature vectors as a dataset, and its mini-batches."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import BatchSampler, Dataset, RandomSampler, SequentialSampler

__all__ = ["FeatureDataset", "FeatureBatches"]


class FeatureDataset(Dataset):
    """Cached feature vectors -> ``(features, label)`` pairs.

    With ``hflip=True`` each access picks the flipped view with probability
    1/2, drawing from torch's global generator exactly as
    :class:`~cxrkit.estimators._data.ImageTensorDataset` does, so a seeded run
    flips the same samples in the same epochs with or without the cache.
    """

    def __init__(
        self,
        orig: np.ndarray,
        y: np.ndarray,
        flipped: np.ndarray | None = None,
        hflip: bool = False,
    ) -> None:
        if hflip and flipped is None:
            raise ValueError("hflip=True needs the flipped view's features.")
        self.orig = torch.from_numpy(np.ascontiguousarray(orig, dtype=np.float32))
        self.flipped = (
            torch.from_numpy(np.ascontiguousarray(flipped, dtype=np.float32))
            if flipped is not None
            else None
        )
        self.y = torch.as_tensor(np.asarray(y, dtype=np.float32))
        self.hflip = hflip
        self._views = (
            torch.cat([self.orig, self.flipped])
            if hflip and self.flipped is not None
            else self.orig
        )

    def __len__(self) -> int:
        return len(self.orig)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        flip = bool(self.hflip and torch.rand(()) < 0.5)
        src = self.flipped if flip else self.orig
        return src[i], self.y[i]  # type: ignore[index]

    def __getitems__(self, indices: list[int]) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Return a whole batch at once (``DataLoader`` calls this instead of ``__getitem__``).

        Draws the flips as one ``torch.rand(n)``, which yields the same numbers as
        ``n`` calls of ``torch.rand(())``: a seeded run flips the same samples.
        """
        return list(zip(*self.batch(indices)))

    def batch(self, indices: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """``(features, labels)`` of ``indices`` as two tensors, drawing the flips as :meth:`__getitems__` does."""
        idx = torch.as_tensor(indices, dtype=torch.long)
        if self.hflip:
            flip = torch.rand(len(idx)) < 0.5
            # rows n..2n-1 of `_views` are the flipped views: one gather per batch
            x = torch.index_select(self._views, 0, idx + flip * len(self.orig))
        else:
            x = torch.index_select(self.orig, 0, idx)
        return x, torch.index_select(self.y, 0, idx)


class FeatureBatches:
    """Mini-batches of a :class:`FeatureDataset`, without ``DataLoader``'s per-batch machinery (fetcher, collation of per-sample pairs).

    The head of a ResNet50 trains in well under a millisecond per batch, so that
    machinery was a fifth of the time of a cached fit. Each pass draws from
    torch's global generator exactly as a single-process ``DataLoader`` with the
    same ``batch_size``/``shuffle``/``drop_last``/``generator`` does (its base-seed
    draw, then the sampler's permutation, then the flips of each batch), so a
    seeded run yields the same batches either way.
    """

    #: ``iterator_train__``/``iterator_valid__`` options this class reproduces.
    OPTIONS = frozenset({"batch_size", "shuffle", "drop_last", "generator"})

    def __init__(
        self,
        dataset: FeatureDataset,
        batch_size: int = 1,
        shuffle: bool = False,
        drop_last: bool = False,
        generator: torch.Generator | None = None,
    ) -> None:
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        self.generator = generator

    def __len__(self) -> int:
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        # DataLoader's iterator draws a base seed for its workers, even with none.
        torch.empty((), dtype=torch.int64).random_(generator=self.generator)
        sampler = (
            RandomSampler(self.dataset, generator=self.generator)
            if self.shuffle
            else SequentialSampler(self.dataset)
        )
        for indices in BatchSampler(sampler, self.batch_size, self.drop_last):
            yield self.dataset.batch(indices)
