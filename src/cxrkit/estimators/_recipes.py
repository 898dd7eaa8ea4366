"""The two papers' training recipes, by name."""

from __future__ import annotations

from typing import Any

__all__ = ["RECIPES", "recipe_params"]

#: Each recipe maps to CXRClassifier parameters. See the docstrings in
#: :meth:`cxrkit.CXRClassifier.from_recipe`.
RECIPES: dict[str, dict[str, Any]] = {
    # Hall, Paul, Goldgof & Goldgof (2020): RMSprop (Keras defaults rho=0.9,
    # eps=1e-8), binary cross-entropy, triangular cyclic learning rate
    # 1e-4..1e-3 stepped per batch with a step size of 15 batches, horizontal
    # flips, convolutional layers frozen (the small CNN is trained whole),
    # head GAP -> dense 64 -> dropout -> sigmoid.
    "hall2020": {
        "head": "hall2020",
        "freeze": "backbone",
        "augment": "hflip",
        "optimizer": "rmsprop",
        "optimizer__alpha": 0.9,
        "optimizer__eps": 1e-8,
        "lr": 1e-4,
        "lr_schedule": "cyclic",
        "lr_schedule__base_lr": 1e-4,
        "lr_schedule__max_lr": 1e-3,
        "lr_schedule__step_size_up": 15,
        "batch_size": 16,
        "max_epochs": 100,
    },
    # The opacity study (2020): ResNet-101, only the new fully connected layer
    # trainable, two-class softmax, SGD with momentum 0.9, mini-batch 10,
    # 8 epochs, learning rate 1e-4, shuffled every epoch, validation every epoch.
    "opacity2020": {
        "head": "fc",
        "freeze": "all_but_last",
        "augment": None,
        "optimizer": "sgd",
        "optimizer__momentum": 0.9,
        "lr": 1e-4,
        "lr_schedule": None,
        "batch_size": 10,
        "max_epochs": 8,
    },
}


def recipe_params(name: str, architecture: str) -> dict[str, Any]:
    from ..registry import Registry

    if name not in RECIPES:
        reg = Registry("recipe")
        for k in RECIPES:
            reg.add(k, dict, plugin="cxrkit")
        reg.get(name)  # raises with suggestions
    params = dict(RECIPES[name])
    if name == "hall2020" and architecture == "hall2020_cnn":
        params["freeze"] = "none"  # the authors trained their small CNN from scratch
    return params
