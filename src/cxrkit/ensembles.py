"""Multi-architecture ensembles as plain scikit-learn objects."""

from __future__ import annotations

from typing import Any

from sklearn.ensemble import VotingClassifier

from .estimators import CXRClassifier, SnapshotEnsembleClassifier

__all__ = ["hall2020_ensemble", "HALL2020_ARCHITECTURES"]

HALL2020_ARCHITECTURES = ("resnet50", "vgg16", "hall2020_cnn")


def hall2020_ensemble(architectures: tuple[str, ...] = HALL2020_ARCHITECTURES, *,
                      pretrained: str | None = "imagenet", n_snapshots: int = 7,
                      interval: int = 10, monitor: str = "valid_acc", threshold: float = 0.8,
                      validation: float | int | None = 18, max_epochs: int = 150,
                      n_jobs: int | None = None, **estimator_params: Any) -> VotingClassifier:
    """The 21-model ensemble of Hall et al. (2020) as a scikit-learn ``VotingClassifier``.

    One :class:`SnapshotEnsembleClassifier` per architecture (ResNet50, VGG16 and
    the authors' small CNN), each trained with the ``"hall2020"`` recipe and the
    paper's unseen-test snapshot rule (validation accuracy > 0.8 on 18 held-out
    training images per class, then 7 snapshots 10 epochs apart), combined with
    ``voting="soft"`` and equal weights. Because every architecture contributes
    the same number of members, averaging each ensemble's mean and then the
    three means equals averaging all 21 members' probabilities.

    Parameters
    ----------
    architectures : tuple of str
        Registered architecture names.
    pretrained : None, "imagenet" or path, default="imagenet"
        Initial weights of the torchvision backbones (the small CNN is always
        trained from scratch).
    n_snapshots, interval, monitor, threshold, validation, max_epochs
        Passed to each :class:`SnapshotEnsembleClassifier`.
    n_jobs : int or None
        Fit the architectures in parallel (scikit-learn's joblib).
    **estimator_params
        Extra :class:`CXRClassifier` parameters for every member (e.g. ``device``).

    Returns
    -------
    sklearn.ensemble.VotingClassifier
    """
    estimators = []
    for arch in architectures:
        params = dict(estimator_params)
        if arch != "hall2020_cnn" and pretrained is not None:
            params.setdefault("pretrained", pretrained)
        base = CXRClassifier.from_recipe("hall2020", architecture=arch, **params)
        estimators.append((arch, SnapshotEnsembleClassifier(
            base, n_snapshots=n_snapshots, interval=interval, policy="threshold",
            monitor=monitor, threshold=threshold, validation=validation, max_epochs=max_epochs)))
    return VotingClassifier(estimators, voting="soft", n_jobs=n_jobs)
