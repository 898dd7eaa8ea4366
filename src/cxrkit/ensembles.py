"""Multi-architecture ensembles as plain scikit-learn objects."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import sklearn
from sklearn.ensemble import VotingClassifier

from .estimators import CXRClassifier, SnapshotEnsembleClassifier

__all__ = [
    "hall2020_ensemble",
    "fit_with_groups",
    "save_voting_ensemble",
    "load_voting_ensemble",
    "HALL2020_ARCHITECTURES",
]

HALL2020_ARCHITECTURES = ("resnet50", "vgg16", "hall2020_cnn")


def hall2020_ensemble(
    architectures: tuple[str, ...] = HALL2020_ARCHITECTURES,
    *,
    pretrained: str | Mapping[str, str | None] | None = "imagenet",
    n_snapshots: int = 7,
    interval: int = 10,
    monitor: str = "valid_acc",
    threshold: float = 0.8,
    validation: float | int | None = 18,
    max_epochs: int = 150,
    n_jobs: int | None = None,
    **estimator_params: Any,
) -> VotingClassifier:
    """Return the 21-model ensemble of Hall et al. (2020) as a scikit-learn ``VotingClassifier``.

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
    pretrained : None, "imagenet", path or mapping, default="imagenet"
        Initial weights of the torchvision backbones (the small CNN is always
        trained from scratch). A mapping gives them per architecture, e.g.
        ``{"vgg16": "vgg16_features.pth"}``; architectures it does not name
        start from random weights.
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
        weights = pretrained.get(arch) if isinstance(pretrained, Mapping) else pretrained
        if arch != "hall2020_cnn" and weights is not None:
            params.setdefault("pretrained", weights)
        base = CXRClassifier.from_recipe("hall2020", architecture=arch, **params)
        estimators.append(
            (
                arch,
                SnapshotEnsembleClassifier(
                    base,
                    n_snapshots=n_snapshots,
                    interval=interval,
                    policy="threshold",
                    monitor=monitor,
                    threshold=threshold,
                    validation=validation,
                    max_epochs=max_epochs,
                ),
            )
        )
    return VotingClassifier(estimators, voting="soft", n_jobs=n_jobs)


def fit_with_groups(ensemble: VotingClassifier, X: Any, y: Any, groups: Any) -> VotingClassifier:
    """Fit a ``VotingClassifier`` of snapshot ensembles, passing patient ids to each member.

    Each member's internal validation split is grouped by patient, so the
    members need ``groups``. scikit-learn passes such metadata to the members of
    a meta-estimator only through metadata routing; this turns it on for the
    fit alone and requests ``groups`` for every member, which works the same
    on every scikit-learn version cxrkit supports.

    Parameters
    ----------
    ensemble : VotingClassifier
        E.g. from :func:`hall2020_ensemble`.
    X, y : array-like
        Training images and labels.
    groups : array-like of shape (n,)
        Patient ids.

    Returns
    -------
    VotingClassifier
        ``ensemble``, fitted.
    """
    with sklearn.config_context(enable_metadata_routing=True):
        for _, member in ensemble.estimators:
            member.set_fit_request(groups=True)
        return ensemble.fit(X, y, groups=groups)


def save_voting_ensemble(ensemble: VotingClassifier, directory: str | os.PathLike[str]) -> Path:
    """Save a fitted soft-voting ensemble: one model folder per member plus ``voting.json``.

    scikit-learn fits the members of a ``VotingClassifier`` on label-encoded
    targets (0, 1, ...); each member is saved with the ensemble's class names
    instead, so that every folder, and :func:`load_voting_ensemble`, predicts
    names such as ``covid``.

    Parameters
    ----------
    ensemble : VotingClassifier
        Fitted, ``voting="soft"``, members saveable by :func:`cxrkit.save_model`.
    directory : path

    Returns
    -------
    pathlib.Path
    """
    from .estimators import save_model

    out = Path(directory)
    names = list(ensemble.named_estimators_)
    classes = np.asarray(ensemble.classes_)
    for name, member in ensemble.named_estimators_.items():
        inner = getattr(member, "estimator_", member)
        saved = (member.classes_, inner.classes_)
        member.classes_ = inner.classes_ = classes
        try:
            save_model(member, out / name)
        finally:
            member.classes_, inner.classes_ = saved
    (out / "voting.json").write_text(
        json.dumps(
            {
                "kind": "VotingClassifier",
                "format": 1,
                "voting": ensemble.voting,
                "weights": ensemble.weights,
                "classes": classes.tolist(),
                "members": names,
            },
            indent=2,
        )
    )
    return out


def load_voting_ensemble(directory: str | os.PathLike[str]) -> VotingClassifier:
    """Load an ensemble written by :func:`save_voting_ensemble` as a fitted ``VotingClassifier``."""
    from sklearn.preprocessing import LabelEncoder
    from sklearn.utils import Bunch

    from .errors import ConfigurationError
    from .estimators import load_model

    d = Path(directory)
    try:
        meta = json.loads((d / "voting.json").read_text())
        names, classes = list(meta["members"]), list(meta["classes"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigurationError(
            f"'{d / 'voting.json'}' is not a cxrkit voting-ensemble file "
            f"({type(exc).__name__}: {exc})."
        ) from None
    members = [(name, load_model(d / name)) for name in names]
    for name, member in members:
        if [str(c) for c in member.classes_] != [str(c) for c in classes]:
            raise ConfigurationError(
                f"Member '{d / name}' predicts {list(member.classes_)}, "
                f"but voting.json names {classes}."
            )
    vote = VotingClassifier(members, voting=meta.get("voting", "soft"), weights=meta.get("weights"))
    vote.estimators_ = [m for _, m in members]
    vote.named_estimators_ = Bunch(**dict(members))
    vote.le_ = LabelEncoder().fit(classes)
    vote.classes_ = vote.le_.classes_
    return vote
