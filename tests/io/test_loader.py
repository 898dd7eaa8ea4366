"""XRayLoader: paths -> arrays, in a Pipeline, with a content-hash cache."""

from __future__ import annotations

import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sklearn.base import clone
from sklearn.pipeline import FunctionTransformer, make_pipeline

from cxrkit.errors import ConfigurationError, ImageDecodeError
from cxrkit.io import GLOBAL_CACHE, XRayLoader, read_xray, resize_image


@pytest.fixture
def pngs(tmp_path: Path) -> list[str]:
    rng = np.random.default_rng(0)
    paths = []
    for i in range(4):
        p = tmp_path / f"img{i}.png"
        Image.fromarray(rng.integers(0, 255, (40, 30), dtype=np.uint8)).save(p)
        paths.append(str(p))
    return paths


def test_transform_shape_and_values(pngs: list[str]) -> None:
    out = XRayLoader(size=16, interpolation="nearest", cache=False).fit_transform(pngs)
    assert out.shape == (4, 16, 16) and out.dtype == np.float32
    np.testing.assert_array_equal(out[2], resize_image(read_xray(pngs[2]), 16, "nearest"))


def test_starts_a_pipeline(pngs: list[str]) -> None:
    pipe = make_pipeline(XRayLoader(size=8), FunctionTransformer(lambda a: a.reshape(len(a), -1)))
    assert pipe.fit_transform(pngs).shape == (4, 64)
    assert clone(pipe).get_params()["xrayloader__size"] == 8
    pickle.loads(pickle.dumps(XRayLoader(size=8)))


def test_cache_is_keyed_by_content(pngs: list[str], tmp_path: Path) -> None:
    GLOBAL_CACHE.clear()
    loader = XRayLoader(size=12)
    first = loader.transform(pngs)
    assert GLOBAL_CACHE.misses == 4 and GLOBAL_CACHE.hits == 0
    copy = tmp_path / "copy.png"
    shutil.copy(pngs[0], copy)  # same content under another name: a hit
    again = loader.transform(pngs + [str(copy)])
    assert GLOBAL_CACHE.hits == 5
    np.testing.assert_array_equal(again[:4], first)
    np.testing.assert_array_equal(again[4], first[0])
    # overwrite a file with new content: a miss, and the new pixels
    Image.fromarray(np.full((40, 30), 200, np.uint8) - np.eye(40, 30, dtype=np.uint8)).save(pngs[1])
    new = loader.transform(pngs)
    assert GLOBAL_CACHE.misses == 5
    assert new[1].mean() == pytest.approx(200 / 255, abs=0.01)
    # a different size is another key
    XRayLoader(size=10).transform(pngs[:1])
    assert GLOBAL_CACHE.misses == 6


def test_lists_every_bad_file(pngs: list[str], tmp_path: Path) -> None:
    bad = []
    for i in range(12):
        p = tmp_path / f"bad{i:02d}.png"
        p.write_bytes(b"")
        bad.append(str(p))
    with pytest.raises(
        ImageDecodeError,
        match=r"(?s)^12 of 16 images could not be read:\n  Image '.*bad00\.png' is empty.*"
        r"\.\.\. and 2 more\nRemove them, or load the data with",
    ):
        XRayLoader(size=8, cache=False).transform(pngs + bad)


def test_transforms_by_name(pngs: list[str]) -> None:
    out = XRayLoader(size=20, transforms=["hflip"], cache=False).transform(pngs[:1])
    ref = resize_image(read_xray(pngs[0])[:, ::-1], 20)
    np.testing.assert_allclose(out[0], ref, atol=1e-6)


def test_bad_parameters(pngs: list[str]) -> None:
    with pytest.raises(
        ConfigurationError,
        match=r"^The 'size' parameter of XRayLoader must be an int in the range "
        r"\[1, inf\)\. Got 0 instead\.$",
    ):
        XRayLoader(size=0).fit(pngs)
    with pytest.raises(ConfigurationError, match="'interpolation' parameter of XRayLoader"):
        XRayLoader(interpolation="area").transform(pngs)
