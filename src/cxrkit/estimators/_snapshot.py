"""Snapshot ensembles: one training run, several epochs' weights as members."""

from __future__ import annotations

import warnings
from numbers import Integral, Real
from typing import TYPE_CHECKING, Any, ClassVar, cast

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin, MetaEstimatorMixin, clone
from sklearn.utils._param_validation import Interval, RealNotInt, StrOptions
from sklearn.utils.validation import check_is_fitted

from .._config import get_config
from .._memory import release_free_memory, retain_freed_memory
from ..errors import ConfigurationError
from ._classifier import CXRClassifier
from ._interrupt import refuse_interrupted
from ._params import validate_params
from ._snapshot_callback import POLICIES, SnapshotCallback, SnapshotError, _nbytes

if TYPE_CHECKING:
    from ..architectures import CXRNet

__all__ = ["SnapshotEnsembleClassifier", "SnapshotCallback", "SnapshotError", "POLICIES"]


class SnapshotEnsembleClassifier(MetaEstimatorMixin, ClassifierMixin, BaseEstimator):
    """Train one network and average the predictions of several of its epochs.

    Parameters
    ----------
    estimator : CXRClassifier or None, default=None
        The network to train (cloned). ``None`` means
        ``CXRClassifier.from_recipe("hall2020", architecture="hall2020_cnn")``.
    n_snapshots : int, default=7
        Members kept.
    interval : int, default=10
        Epochs between two members (the cycle length for ``"cyclic"``).
    policy : {"threshold", "cyclic", "last"}, default="threshold"
        ``"threshold"`` (Hall et al. 2020): once ``monitor`` first exceeds
        ``threshold`` -- training accuracy > 0.9 in their cross-validation,
        validation accuracy > 0.8 in their unseen-test experiment -- keep that
        epoch and every ``interval``-th after it until ``n_snapshots`` are kept,
        then stop. The threshold must be met by epoch ``max_epochs``; training
        then continues for up to ``(n_snapshots - 1) * interval`` more epochs,
        so that every member fits. ``"cyclic"`` (Huang et al. 2017, Snapshot Ensembles): cosine
        learning rate restarted every ``interval`` epochs, a member at the end
        of each cycle (``n_snapshots * interval`` epochs). ``"last"``: the last
        ``n_snapshots`` epochs, ``interval`` apart.
    monitor : {"train_acc", "valid_acc"}, default="train_acc"
        Metric of the threshold policy. ``"valid_acc"`` needs ``validation``.
        For a multi-label task the accuracy is the share of observed labels
        (all findings) predicted right at 0.5.
    threshold : float, default=0.9
        The monitored value must exceed it (strictly).
    validation : None, float or int, default=None
        Validation split of the *training* data for ``monitor="valid_acc"``
        (an int is images per class; the paper used 18). Stratified and grouped
        by patient when ``groups`` is passed to ``fit``. Never the test set.
        ``None`` with ``monitor="valid_acc"`` uses 18 per class.
    max_epochs : int or None, default=None
        Training length (for ``"threshold"``: the epoch by which the threshold
        must be met); ``None`` uses the estimator's ``max_epochs``
        (``"cyclic"`` always trains ``n_snapshots * interval`` epochs).
    if_threshold_not_reached : {"raise", "last"}, default="raise"
        What happens when the threshold policy cannot complete its members:
        raise :class:`SnapshotError` saying where the monitored metric peaked,
        or keep the last ``n_snapshots`` epochs ``interval`` apart, with a warning.

    Attributes
    ----------
    estimator_ : CXRClassifier
        The fitted clone; its network holds the weights of the last trained epoch.
    members_ : list of dict
        Per member, only the tensors training changed (a frozen backbone is
        stored once, shared).
    snapshots_ : list of dict
        Per member: ``epoch``, ``monitor``, ``value``, ``lr`` and ``nbytes``.
    snapshot_nbytes_ : int
        Bytes the members take beyond the shared network.
    policy_used_ : str
        ``policy``, or ``"last (threshold not met)"`` after the documented fallback.
    threshold_epoch_ : int or None
        The epoch in which the monitored metric first exceeded ``threshold``
        (``None`` when it never did or the policy has no threshold).
    classes_ : ndarray of shape (2,)
    n_features_in_ : int
        Only when the estimator was fitted on 2-D arrays.
    interrupted_ : str or None
        ``None`` after a complete ``fit``; otherwise why the last ``fit`` did not
        finish (prediction and saving then refuse the ensemble).

    Examples
    --------
    >>> import numpy as np
    >>> from cxrkit import CXRClassifier, SnapshotEnsembleClassifier
    >>> rng = np.random.default_rng(0)
    >>> X = rng.integers(0, 255, (20, 16, 16), dtype=np.uint8)
    >>> y = np.array(["covid", "pneumonia"] * 10)
    >>> ens = SnapshotEnsembleClassifier(CXRClassifier("tiny_cnn", input_size=16, max_epochs=4),
    ...                                  policy="last", n_snapshots=2, interval=2)
    >>> [s["epoch"] for s in ens.fit(X, y).snapshots_]
    [2, 4]
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "estimator": [None, CXRClassifier],
        "n_snapshots": [Interval(Integral, 1, None, closed="left")],
        "interval": [Interval(Integral, 1, None, closed="left")],
        "policy": [StrOptions(set(POLICIES))],
        "monitor": [StrOptions({"train_acc", "valid_acc"})],
        "threshold": [Real],
        "validation": [
            None,
            Interval(RealNotInt, 0, 1, closed="left"),
            Interval(Integral, 0, None, closed="left"),
        ],
        "max_epochs": [None, Interval(Integral, 1, None, closed="left")],
        "if_threshold_not_reached": [StrOptions({"raise", "last"})],
    }

    def __init__(
        self,
        estimator: CXRClassifier | None = None,
        *,
        n_snapshots: int = 7,
        interval: int = 10,
        policy: str = "threshold",
        monitor: str = "train_acc",
        threshold: float = 0.9,
        validation: float | int | None = None,
        max_epochs: int | None = None,
        if_threshold_not_reached: str = "raise",
    ) -> None:
        self.estimator = estimator
        self.n_snapshots = n_snapshots
        self.interval = interval
        self.policy = policy
        self.monitor = monitor
        self.threshold = threshold
        self.validation = validation
        self.max_epochs = max_epochs
        self.if_threshold_not_reached = if_threshold_not_reached

    def __sklearn_tags__(self):  # type: ignore[no-untyped-def]
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = True
        tags.classifier_tags.multi_label = True
        return tags

    def _base(self) -> CXRClassifier:
        if self.estimator is None:
            return CXRClassifier.from_recipe("hall2020", architecture="hall2020_cnn")
        return clone(self.estimator)

    def fit(self, X: Any, y: Any, groups: Any = None) -> SnapshotEnsembleClassifier:
        """Train once and keep the members the policy selects.

        Parameters
        ----------
        X, y : see :meth:`CXRClassifier.fit`
        groups : array-like of shape (n,), optional
            Patient ids, used by the internal validation split.
        """
        validate_params(self)
        est = self._base()
        if self.policy == "cyclic":
            max_epochs = self.n_snapshots * self.interval
            est.set_params(lr_schedule="cosine_restarts", lr_schedule__cycle_epochs=self.interval)
        else:
            max_epochs = self.max_epochs or est.max_epochs
        if self.policy == "last" and max_epochs < (self.n_snapshots - 1) * self.interval + 1:
            raise ConfigurationError(
                f"policy='last' with n_snapshots={self.n_snapshots} and interval={self.interval} "
                f"needs at least {(self.n_snapshots - 1) * self.interval + 1} epochs; "
                f"max_epochs is {max_epochs}. Raise max_epochs or lower n_snapshots/interval."
            )
        validation = self.validation
        if self.monitor == "valid_acc" and self.policy == "threshold" and validation is None:
            validation = 18
        if validation is not None:
            est.set_params(validation=validation)
        cb = SnapshotCallback(
            self.policy, self.n_snapshots, self.interval, self.monitor, self.threshold, max_epochs
        )
        if self.policy == "threshold":  # room for every member after a late threshold
            max_epochs += (self.n_snapshots - 1) * self.interval
        est.set_params(max_epochs=max_epochs, callbacks=[*(est.callbacks or []), ("snapshots", cb)])
        try:
            est.fit(X, y, groups=groups)
        except BaseException:
            self.interrupted_ = est.__dict__.get("interrupted_") or "fit did not finish"
            raise
        cb = dict(est.net_.callbacks_)["snapshots"]
        members, infos = cb.members_, cb.snapshots_
        self.policy_used_ = self.policy
        self.threshold_epoch_ = cb.start_epoch_ if self.policy == "threshold" else None
        if len(members) < self.n_snapshots:
            members, infos = self._incomplete(cb, len(est.history_))
            self.policy_used_ = "last (threshold not met)"
        est.set_params(
            callbacks=[
                c
                for c in (est.callbacks or [])
                if not (isinstance(c, tuple) and c[0] == "snapshots")
            ]
            or None
        )
        self.estimator_ = est
        self.members_ = members
        self.snapshots_ = infos
        self.snapshot_nbytes_ = int(sum(s["nbytes"] for s in infos))
        self.copy_target(est)
        if hasattr(est, "n_features_in_"):
            self.n_features_in_ = est.n_features_in_
        self.interrupted_ = None
        return self

    def copy_target(self, est: CXRClassifier) -> None:
        """Take the fitted task's attributes (``classes_``, ``task_``, ``labels_``, ``n_outputs_``) from the trained estimator."""
        self.classes_ = est.classes_
        self.task_ = est.task_
        self.labels_ = est.labels_
        self.n_outputs_ = est.n_outputs_

    def _incomplete(self, cb: SnapshotCallback, epochs: int) -> tuple[list, list]:
        trace = np.asarray(cb.trace_, dtype=float)
        if len(trace) and np.isfinite(trace).any():
            peak_epoch = int(np.nanargmax(trace)) + 1
            peak = f"peaked at {np.nanmax(trace):.3f} in epoch {peak_epoch}"
        else:
            peak = "was never recorded"
        if cb.start_epoch_ is None:
            what = f"{cb.monitor!r} never exceeded {self.threshold} in {epochs} epochs (it {peak})"
        else:
            what = (
                f"{cb.monitor!r} first exceeded {self.threshold} in epoch {cb.start_epoch_}, "
                f"but only {len(cb.members_)} of {self.n_snapshots} snapshots "
                f"{self.interval} epochs apart fit before epoch {epochs}"
            )
        if self.if_threshold_not_reached == "last" and len(cb.fallback_) < self.n_snapshots:
            need = (self.n_snapshots - 1) * self.interval + 1
            raise SnapshotError(
                f"Snapshot policy 'threshold' could not complete: {what}, and the fallback "
                f"(if_threshold_not_reached='last') needs {self.n_snapshots} epochs "
                f"{self.interval} apart, i.e. at least {need} epochs, but only {epochs} were "
                f"trained. Raise max_epochs to {need} or more, or lower n_snapshots or interval."
            )
        if self.if_threshold_not_reached == "raise":
            raise SnapshotError(
                f"Snapshot policy 'threshold' could not complete: {what}. Raise max_epochs, lower "
                "threshold, or pass if_threshold_not_reached='last' to keep the last "
                f"{self.n_snapshots} epochs {self.interval} apart instead."
            )
        warnings.warn(
            f"Snapshot threshold not met: {what}. Kept the last {self.n_snapshots} "
            f"epochs {self.interval} apart instead.",
            UserWarning,
            stacklevel=3,
        )
        fb = cb.fallback_[-self.n_snapshots :]
        return [s for s, _ in fb], [i for _, i in fb]

    # -- prediction ---------------------------------------------------------------
    def member_proba(self, X: Any) -> np.ndarray:
        """Probabilities of every member.

        Binary: the positive-class probability, shape ``(n_members, n)``;
        multi-class and multi-label: each member's ``predict_proba``, shape
        ``(n_members, n, k)``.

        The images are decoded once; with a frozen backbone its features are
        computed once and only the members' heads are evaluated.
        """
        check_is_fitted(self, "members_")
        refuse_interrupted(self, "predict")
        est = self.estimator_
        src = est.check_predict_input(X)
        module = est.module_
        current = {k: v.detach().clone() for k, v in module.state_dict().items()}
        shared_backbone = all(not any(k.startswith("backbone.") for k in m) for m in self.members_)
        module.eval()
        binary = est.target_.task == "binary"
        outs: list[list[torch.Tensor]] = [[] for _ in self.members_]
        cached = est.iter_cached_features(src) if shared_backbone else None
        inputs = cached if cached is not None else est.iter_batches(src)
        trim_every = get_config()["trim_every"]
        try:
            with torch.inference_mode(), retain_freed_memory(est._tune_malloc()):
                for k, xb in enumerate(inputs):
                    if k % trim_every == trim_every - 1:
                        release_free_memory()
                    xb = xb.to(est.device_)
                    if cached is not None:
                        feats = xb  # features from the cache
                    else:
                        feats = module.features(xb) if shared_backbone else None
                    for j, member in enumerate(self.members_):
                        module.load_state_dict(member, strict=False)
                        logit = module.forward_head(feats) if feats is not None else module(xb)
                        outs[j].append(
                            torch.sigmoid(logit.float()).cpu() if binary else logit.float().cpu()
                        )
        finally:
            module.load_state_dict(current)
        out = torch.stack([torch.cat(o) for o in outs]).numpy().astype(np.float64)
        return out if binary else np.stack([est.target_.proba(m) for m in out])

    def predict_proba(self, X: Any) -> np.ndarray:
        """Mean of the members' probabilities, shaped as the estimator's ``predict_proba`` (binary ``(n, 2)`` in ``classes_`` order)."""
        mean = self.member_proba(X).mean(axis=0)
        if mean.ndim == 2:
            return mean
        return np.column_stack([1.0 - mean, mean])

    def predict(self, X: Any) -> np.ndarray:
        """Return labels from the averaged probabilities, as the estimator's ``predict`` (its ``threshold`` included)."""
        proba = self.predict_proba(X)
        return self.estimator_.target_.predict(proba, self.estimator_.threshold)

    def decision_function(self, X: Any) -> np.ndarray:
        """Log-odds of the averaged probability of ``classes_[1]`` (binary), or of each class or finding."""
        proba = self.predict_proba(X)
        p = np.clip(proba[:, 1] if self.estimator_.target_.task == "binary" else proba, 1e-12, 1)
        p = np.minimum(p, 1 - 1e-12)
        return np.log(p / (1 - p))

    # -- building from existing networks --------------------------------------------
    @classmethod
    def from_networks(
        cls,
        networks: list[torch.nn.Module],
        classes: Any,
        *,
        snapshots: list[dict[str, Any]] | None = None,
        preprocessing: Any = None,
    ) -> SnapshotEnsembleClassifier:
        """Return a fitted ensemble from already-trained networks of one architecture (e.g. imported weights). Each member stores its full state."""
        if not networks:
            raise ConfigurationError("from_networks needs at least one network.")
        est = CXRClassifier.from_module(
            cast("CXRNet", networks[0]), classes, preprocessing=preprocessing
        )
        ens = cls(estimator=clone(est), n_snapshots=len(networks), policy="last", interval=1)
        ens.estimator_ = est
        ens.members_ = [
            {k: v.detach().clone() for k, v in n.state_dict().items()} for n in networks
        ]
        ens.snapshots_ = snapshots or [
            {"epoch": None, "monitor": None, "value": None, "lr": None, "nbytes": _nbytes(m)}
            for m in ens.members_
        ]
        ens.snapshot_nbytes_ = int(sum(_nbytes(m) for m in ens.members_))
        ens.copy_target(est)
        ens.interrupted_ = None
        return ens
