"""The demo's plan: which protocol ``cxrkit demo`` runs on synthetic data, and with what."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["DemoRun", "demo_runs"]


@dataclass(frozen=True)
class DemoRun:
    """One protocol run of the demo.

    Parameters
    ----------
    title : str
        What the run shows, for the console.
    subfolder : str
        Report folder below the demo's ``--out`` (``""``: the folder itself).
    protocol : str
        A registered protocol name.
    options : dict
        The protocol's options.
    """

    title: str
    subfolder: str
    protocol: str
    options: dict[str, Any] = field(default_factory=dict)


def demo_runs(*, quick: bool, seed: int, device: str | None, n_jobs: int | None) -> list[DemoRun]:
    """Return the demo's two runs: Hall et al.'s small CNN and a frozen ResNet-18.

    Parameters
    ----------
    quick : bool
        Fewer epochs (a smoke test).
    seed : int
        The protocols' random state.
    device : str or None
        ``"cpu"``, ``"cuda"`` or ``None`` (auto).
    n_jobs : int or None
        Folds trained at once.

    Returns
    -------
    list of DemoRun
    """
    common = dict(
        n_splits=3,
        n_snapshots=3,
        interval=2,
        n_bootstraps=500,
        if_threshold_not_reached="last",
        random_state=seed,
        device=device or "auto",
        n_jobs=n_jobs,
    )
    cnn = dict(architecture="hall2020_cnn", max_epochs=8 if quick else 16)
    resnet = dict(
        architecture="resnet18",
        input_size=64,
        max_epochs=10 if quick else 20,
        estimator_params={"lr": 3e-4, "lr_schedule": None, "optimizer": "adam"},
    )
    return [
        DemoRun("hall2020_cnn", "", "hall2020-cv", {**common, **cnn}),
        DemoRun(
            "resnet18 (frozen, random init)", "resnet18-frozen", "hall2020-cv", {**common, **resnet}
        ),
    ]
