"""What travels to joblib/Dask workers is small: parameters and paths, never decoded images."""

from __future__ import annotations

import pickle

import pytest

from cxrkit.datasets import load_dataset
from cxrkit.estimators import CXRClassifier, SnapshotEnsembleClassifier


def _size(obj) -> int:
    return len(pickle.dumps(obj))


def test_unfitted_estimators_pickle_small():
    clf = CXRClassifier.from_recipe("hall2020", architecture="resnet50", pretrained="imagenet")
    ens = SnapshotEnsembleClassifier(clf, n_snapshots=7, interval=10)
    # parameters only: no network is built, no weights are loaded before fit
    assert _size(clf) < 2_000 and _size(ens) < 2_500
    assert pickle.loads(pickle.dumps(ens)).get_params()["estimator__lr_schedule"] == "cyclic"


def test_path_dataset_pickles_paths_not_pixels(tmp_path):
    files = load_dataset("synthetic", root=tmp_path, n_patients=20, images_per_patient=2, size=128)
    assert not files.in_memory
    size = _size(files)
    assert size < 400 * len(files)  # about a path and a metadata row per image
    assert size < 128 * 128 * len(files) / 20  # far below the decoded 128x128 images
    back = pickle.loads(pickle.dumps(files))
    assert list(back.X) == list(files.X)


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_fitted_size_does_not_grow_with_training_data():
    """A fitted model (returned by a worker) holds weights, not its training/validation images."""
    sizes = []
    for n_patients in (10, 40):
        ds = load_dataset("synthetic", n_patients=n_patients, images_per_patient=2, size=32)
        clf = CXRClassifier(
            "tiny_cnn", input_size=32, max_epochs=1, validation=0.25, random_state=0
        )
        sizes.append(_size(clf.fit(ds.X, ds.y, groups=ds.groups)))
    assert abs(sizes[1] - sizes[0]) < 2_000, sizes
