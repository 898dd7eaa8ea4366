"""The training dataset's batched fetch is the per-item fetch, batched."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from cxrkit.architectures import IMAGENET_MEAN, IMAGENET_STD, Preprocessing
from cxrkit.estimators._data import ImageTensorDataset


@pytest.mark.parametrize("hflip", [False, True])
@pytest.mark.parametrize(
    "channels,mean,std",
    [
        (3, IMAGENET_MEAN, IMAGENET_STD),
        (1, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)),
    ],
)
def test_getitems_equals_getitem_under_the_same_seed(hflip, channels, mean, std):
    rng = np.random.default_rng(0)
    images = rng.random((40, 12, 12), dtype=np.float32)
    y = rng.integers(0, 2, 40).astype(np.float32)
    prep = Preprocessing(input_size=12, mean=mean, std=std, channels=channels)
    ds = ImageTensorDataset(images, y, prep, hflip=hflip)
    idx = [int(i) for i in rng.permutation(40)[:29]]

    torch.manual_seed(3)
    one_by_one = [ds[i] for i in idx]
    torch.manual_seed(3)
    batched = ds.__getitems__(idx)

    assert len(batched) == len(one_by_one)
    for (xa, ya), (xb, yb) in zip(one_by_one, batched):
        assert xb.shape == (channels, 12, 12)
        torch.testing.assert_close(xa, xb, rtol=0, atol=0)
        assert float(ya) == float(yb)
    if hflip:  # some images really were flipped (the test would be vacuous otherwise)
        torch.manual_seed(3)
        draws = torch.rand(len(idx)) < 0.5
        assert 0 < int(draws.sum()) < len(idx)
        plain = ImageTensorDataset(images, y, prep, hflip=False)
        for (x, _), i, f in zip(batched, idx, draws.tolist()):
            expected = plain[i][0].flip(-1) if f else plain[i][0]
            torch.testing.assert_close(x, expected, rtol=0, atol=0)


def test_dataloader_uses_the_batched_fetch_and_keeps_labels_aligned():
    images = np.arange(6 * 4 * 4, dtype=np.float32).reshape(6, 4, 4) / 100
    y = np.array([0, 1, 0, 1, 1, 0], dtype=np.float32)
    ds = ImageTensorDataset(images, y, Preprocessing(input_size=4), hflip=False)
    xb, yb = next(iter(DataLoader(ds, batch_size=6, shuffle=False)))
    assert xb.shape == (6, 3, 4, 4)
    torch.testing.assert_close(yb, torch.from_numpy(y))
    torch.testing.assert_close(xb, torch.stack([ds[i][0] for i in range(6)]))


def test_unlabelled_dataset_gives_zero_targets():
    ds = ImageTensorDataset(np.zeros((3, 4, 4), np.float32), None, Preprocessing(input_size=4))
    assert [float(t) for _, t in ds.__getitems__([0, 2])] == [0.0, 0.0]
