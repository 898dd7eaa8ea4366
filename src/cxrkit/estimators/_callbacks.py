"""skorch callbacks used by cxrkit estimators."""

from __future__ import annotations

import math
from typing import Any

import torch
from skorch.callbacks import Callback, LRScheduler
from torch.optim.lr_scheduler import CosineAnnealingWarmRestarts

from ..errors import NonFiniteLossError

__all__ = ["EpochAccuracy", "CosineRestarts", "EpochProgress", "FiniteLoss"]


def batch_accuracy_counts(y_pred: torch.Tensor, y: torch.Tensor) -> tuple[int, int]:
    """Return ``(correct, counted)`` of a batch of logits against its targets.

    Binary (one logit per image): logit > 0 against 0/1. Multi-class (``k``
    logits, one class index per image): the arg-max. Multi-label (``k`` logits
    and ``k`` targets per image): every observed (non-NaN) label counts once,
    ``logit > 0`` against 0/1, so accuracy is the share of observed labels
    predicted right at probability 0.5.
    """
    if y_pred.ndim == 1 or y_pred.shape[-1] == 1:
        correct = ((y_pred.reshape(-1) > 0).float() == y.reshape(-1)).sum().item()
        return int(correct), int(y.numel())
    if y.ndim == 1:
        return int((y_pred.argmax(dim=1) == y.long()).sum().item()), int(y.numel())
    observed = ~torch.isnan(y)
    right = ((y_pred > 0).to(y.dtype) == y) & observed
    return int(right.sum().item()), int(observed.sum().item())


class EpochAccuracy(Callback):
    """Record ``train_acc`` and ``valid_acc`` from the batches of each epoch.

    Like Keras' ``accuracy`` metric, training accuracy is the running accuracy
    of the training batches as they were seen (augmented, dropout on), so it
    costs no extra forward pass. See :func:`batch_accuracy_counts` for what
    counts as correct for each task.
    """

    def on_epoch_begin(self, net: Any, **kwargs: Any) -> None:
        self._counts = {True: [0, 0], False: [0, 0]}

    def on_batch_end(
        self,
        net: Any,
        batch: Any = None,
        training: bool = False,
        y_pred: torch.Tensor | None = None,
        **kwargs: Any,
    ) -> None:
        if y_pred is None or batch is None:
            return
        correct, total = batch_accuracy_counts(y_pred.detach(), batch[1].to(y_pred.device))
        c = self._counts[training]
        c[0] += correct
        c[1] += total

    def on_epoch_end(self, net: Any, **kwargs: Any) -> None:
        accelerator = getattr(net, "accelerator", None)
        if accelerator is not None and accelerator.num_processes > 1:
            # data-parallel training: every process saw its own shard of each batch
            local = torch.tensor(
                [v for t in (True, False) for v in self._counts[t]],
                dtype=torch.float64,
                device=accelerator.device,
            )
            a, b, c, d = (int(v) for v in accelerator.reduce(local, reduction="sum").tolist())
            self._counts = {True: [a, b], False: [c, d]}
        for training, key in ((True, "train_acc"), (False, "valid_acc")):
            correct, total = self._counts[training]
            if total:
                net.history.record(key, correct / total)
        net.history.record("lr", net.optimizer_.param_groups[0]["lr"])


class CosineRestarts(LRScheduler):
    """Cosine-annealed learning rate restarted every ``cycle_epochs`` epochs.

    The schedule of Huang et al. (2017), "Snapshot Ensembles: Train 1, get M
    for free": ``lr(t) = lr / 2 * (cos(pi * mod(t, T/M) / (T/M)) + 1)`` with ``t``
    counted in batches. It is skorch's :class:`~skorch.callbacks.LRScheduler`
    with torch's :class:`~torch.optim.lr_scheduler.CosineAnnealingWarmRestarts`
    stepped every batch, its period ``T_0`` set to ``cycle_epochs`` epochs'
    worth of batches when training starts. The scheduler steps before each
    training batch but the first (rather than after each), so the ``lr`` that
    :class:`EpochAccuracy` records at the end of an epoch, and a snapshot's
    ``lr``, are the rate of the epoch's last batch, not the restarted one.

    Parameters
    ----------
    cycle_epochs : int
        Epochs per cycle.
    eta_min : float, default=0.0
        The learning rate at the end of each cycle.
    """

    def __init__(self, cycle_epochs: int, eta_min: float = 0.0) -> None:
        super().__init__(policy=CosineAnnealingWarmRestarts, step_every="batch")
        self.cycle_epochs = cycle_epochs
        self.eta_min = eta_min

    @property
    def kwargs(self) -> dict[str, Any]:
        """Return the scheduler's keyword arguments (``cycle_epochs`` becomes ``T_0``)."""
        kw = dict(super().kwargs)
        kw.pop("cycle_epochs", None)
        return kw

    def on_train_begin(self, net: Any, X: Any = None, y: Any = None, **kwargs: Any) -> None:
        n = len(X) if X is not None else 0
        self.batches_per_epoch_ = max(1, math.ceil(n / net.batch_size)) if n else 1
        self.batches_seen_ = 0
        super().on_train_begin(net, X=X, y=y, **kwargs)

    def on_batch_begin(self, net: Any, training: bool = False, **kwargs: Any) -> None:
        if training and self.batches_seen_ > 0:
            self._step(net, self.lr_scheduler_)

    def on_batch_end(self, net: Any, training: bool = False, **kwargs: Any) -> None:
        if training:
            self._record_last_lr(net, kind="batch")
            self.batches_seen_ += 1
            self.batch_idx_ += 1

    def _get_scheduler(self, net: Any, policy: Any, **scheduler_kwargs: Any) -> Any:
        scheduler_kwargs["T_0"] = int(self.cycle_epochs) * self.batches_per_epoch_
        return super()._get_scheduler(net, policy, **scheduler_kwargs)


class EpochProgress(Callback):
    """A progress bar over epochs (``tqdm``), showing the latest losses and accuracies.

    skorch's own ``ProgressBar`` counts batches; this one counts epochs, which is
    what a long protocol wants to see. The bar closes when training ends.

    Parameters
    ----------
    desc : str, default="epochs"
        Text before the bar.
    leave : bool, default=False
        Keep the finished bar on screen.
    position : int or None, default=None
        ``tqdm`` line offset (``1`` nests it under an outer bar).
    """

    def __init__(
        self, desc: str = "epochs", leave: bool = False, position: int | None = None
    ) -> None:
        self.desc = desc
        self.leave = leave
        self.position = position

    def on_train_begin(self, net: Any, **kwargs: Any) -> None:
        from tqdm.auto import tqdm

        self.bar_ = tqdm(
            total=net.max_epochs,
            desc=self.desc,
            unit="epoch",
            leave=self.leave,
            position=self.position,
            dynamic_ncols=True,
        )

    def on_epoch_end(self, net: Any, **kwargs: Any) -> None:
        row = net.history[-1]
        shown = {k: f"{row[k]:.3f}" for k in ("train_loss", "train_acc", "valid_acc") if k in row}
        self.bar_.set_postfix(shown, refresh=False)
        self.bar_.update(1)

    def on_train_end(self, net: Any, **kwargs: Any) -> None:
        bar = getattr(self, "bar_", None)
        if bar is not None:
            bar.close()

    def __getstate__(self) -> dict[str, Any]:  # a tqdm bar does not pickle
        state = dict(self.__dict__)
        state.pop("bar_", None)
        return state


class FiniteLoss(Callback):
    """Stop training with :class:`~cxrkit.errors.NonFiniteLossError` when a training batch's loss is NaN or infinite.

    Such a loss never recovers: every later update is NaN too, and the model
    would predict NaN for every image. It comes from NaN/inf in the inputs
    (images, cached features) or from a learning rate that made training
    diverge.
    """

    def on_batch_end(
        self,
        net: Any,
        batch: Any = None,
        training: bool = False,
        loss: torch.Tensor | None = None,
        **kwargs: Any,
    ) -> None:
        if not training or loss is None:
            return
        value = float(loss.detach())
        if math.isfinite(value):
            return
        epoch = len(net.history)
        batches = len(net.history[-1]["batches"]) if epoch else 0
        raise NonFiniteLossError(
            f"The training loss became {value} in epoch {epoch}, batch {batches}; training "
            "cannot recover from it. The inputs hold NaN or infinite values (check the images "
            "with `cxrkit check`; with cache_dir=, remove the cached features there), or the "
            f"learning rate (lr={net.lr:g}) made training diverge: lower it."
        )
