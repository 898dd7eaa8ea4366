"""The callback that keeps a snapshot ensemble's members during one training run."""

from __future__ import annotations

from typing import Any

import torch
from skorch.callbacks import Callback

from ..errors import ConfigurationError, CxrkitError

__all__ = ["POLICIES", "SnapshotCallback", "SnapshotError"]

POLICIES = ("threshold", "cyclic", "last")


class SnapshotError(CxrkitError, RuntimeError):
    """Training ended without the snapshots the policy asked for."""


def _nbytes(state: dict[str, torch.Tensor]) -> int:
    return int(sum(t.numel() * t.element_size() for t in state.values()))


class SnapshotCallback(Callback):
    """Keep the trainable weights of the epochs a snapshot policy selects.

    Parameters
    ----------
    policy : {"threshold", "cyclic", "last"}
    n_snapshots : int
    interval : int
        Epochs between two snapshots (for ``"cyclic"``: the cycle length).
    monitor : str
        History key compared with ``threshold`` (``"train_acc"``, ``"valid_acc"``).
    threshold : float
    max_epochs : int
        Training length; needed by ``"last"`` and the threshold fallback.
    """

    def __init__(
        self,
        policy: str,
        n_snapshots: int,
        interval: int,
        monitor: str = "train_acc",
        threshold: float = 0.9,
        max_epochs: int = 100,
    ) -> None:
        self.policy = policy
        self.n_snapshots = n_snapshots
        self.interval = interval
        self.monitor = monitor
        self.threshold = threshold
        self.max_epochs = max_epochs

    def initialize(self) -> SnapshotCallback:
        self.members_: list[dict[str, torch.Tensor]] = []
        self.snapshots_: list[dict[str, Any]] = []
        self.fallback_: list[tuple[dict[str, torch.Tensor], dict[str, Any]]] = []
        self.start_epoch_: int | None = None
        self.trace_: list[float] = []
        return self

    def _take(
        self, net: Any, epoch: int, value: float | None
    ) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        module = net.module_
        if getattr(net, "accelerator", None) is not None:  # DDP-wrapped while training
            module = net.accelerator.unwrap_model(module)
        state = {
            k: v.detach().to("cpu", copy=True) for k, v in module.trainable_state_dict().items()
        }
        info = {
            "epoch": epoch,
            "monitor": self.monitor,
            "value": value,
            "lr": float(net.history[-1].get("lr", net.optimizer_.param_groups[0]["lr"])),
            "nbytes": _nbytes(state),
        }
        return state, info

    def on_epoch_end(self, net: Any, **kwargs: Any) -> None:
        epoch = len(net.history)
        row = net.history[-1]
        value = row.get(self.monitor)
        if value is None and self.policy == "threshold":
            raise ConfigurationError(
                f"The snapshot policy monitors {self.monitor!r}, but training did not record it "
                f"(recorded: {sorted(k for k in row if not k.startswith('batches'))}). Use "
                "monitor='train_acc', or monitor='valid_acc' with a validation split."
            )
        self.trace_.append(float(value) if value is not None else float("nan"))
        take = False
        if self.policy == "threshold":
            if self.start_epoch_ is None and value > self.threshold and epoch <= self.max_epochs:
                self.start_epoch_ = epoch
            take = (
                self.start_epoch_ is not None and (epoch - self.start_epoch_) % self.interval == 0
            )
            # Keep what the documented fallback ("last") would need, cheaply.
            if (
                self.max_epochs - epoch
            ) % self.interval == 0 and self.max_epochs - epoch < self.n_snapshots * self.interval:
                self.fallback_.append(self._take(net, epoch, value))
        elif self.policy == "cyclic":
            take = epoch % self.interval == 0
        elif self.policy == "last":
            take = (
                self.max_epochs - epoch
            ) % self.interval == 0 and self.max_epochs - epoch < self.n_snapshots * self.interval
        if take and len(self.members_) < self.n_snapshots:
            state, info = self._take(net, epoch, value)
            self.members_.append(state)
            self.snapshots_.append(info)
            if len(self.members_) == self.n_snapshots:
                raise KeyboardInterrupt  # skorch's way to end training early
        if self.policy == "threshold" and self.start_epoch_ is None and epoch >= self.max_epochs:
            raise KeyboardInterrupt  # not met by max_epochs: the fallback's members are kept
