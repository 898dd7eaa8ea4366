"""Grad-CAM (Selvaraju et al. 2017) for cxrkit networks, with torch hooks."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from ..errors import ConfigurationError, DataError

if TYPE_CHECKING:  # torch is imported when a map is computed, not with cxrkit.evaluation
    import torch
    from torch import nn

__all__ = ["gradcam", "default_target_layer"]

#: Activations a network may declare in ``gradcam_activation``: the function its
#: forward pass applies to the ``gradcam_target`` map later (e.g. after pooling).
_ACTIVATIONS: dict[str, str] = {"relu": "relu"}  # name -> function of torch


def _declared_activation(
    module: nn.Module, layer: nn.Module
) -> Callable[[torch.Tensor], torch.Tensor] | None:
    """Return the activation ``module`` declares for ``layer``'s output, else ``None``.

    Grad-CAM weighs the feature maps the network reads; where the forward pass
    rectifies the target's output only after pooling (cheaper, same function),
    the map to explain is the rectified one, not the raw convolution output
    whose negative values would cancel the evidence.
    """
    named = getattr(module, "gradcam_target", None)
    act = getattr(module, "gradcam_activation", None)
    if not isinstance(named, str) or act is None or module.get_submodule(named) is not layer:
        return None
    if act not in _ACTIVATIONS:
        raise ConfigurationError(
            f"{type(module).__name__} declares gradcam_activation={act!r}; expected one of "
            f"{sorted(_ACTIVATIONS)} or None."
        )
    import torch

    fn: Callable[[torch.Tensor], torch.Tensor] = getattr(torch, _ACTIVATIONS[act])
    return fn


def default_target_layer(module: nn.Module) -> nn.Module:
    """Return the layer Grad-CAM explains by default.

    That is the layer a network names in ``gradcam_target`` (e.g. a ViT's
    patch-token grid, see :mod:`cxrkit.architectures._raddino`, or the small
    CNN's ``backbone.conv4``), else the last ``Conv2d`` of ``module.backbone``
    (of ``module`` if it has no backbone).

    For torchvision ResNets the output of the last residual block
    (``net.backbone.layer4[-1]``) is a common alternative; pass it as
    ``target_layer``.
    """
    from torch import nn

    named = getattr(module, "gradcam_target", None)
    if isinstance(named, str):
        return module.get_submodule(named)
    root = getattr(module, "backbone", module)
    convs = [m for m in root.modules() if isinstance(m, nn.Conv2d)]
    if not convs:
        raise ConfigurationError(
            f"{type(module).__name__} has no Conv2d layer in its backbone, so Grad-CAM has no "
            "default target. Pass target_layer= a module whose output is a (N, C, h, w) map."
        )
    return convs[-1]


def gradcam(
    module: nn.Module,
    x: torch.Tensor,
    target_layer: nn.Module | None = None,
    *,
    class_index: int = 1,
    output: int | None = None,
) -> np.ndarray:
    """Grad-CAM heatmaps of the positive logit (or of one output of a multi-output network).

    Parameters
    ----------
    module : CXRNet or nn.Module
        A network returning one logit per image (the score of ``classes_[1]``).
    x : Tensor of shape (N, C, H, W)
        Network-ready inputs (e.g. from ``CXRClassifier.iter_batches``).
    target_layer : nn.Module, optional
        Layer whose output feature map is explained; default
        :func:`default_target_layer` (the layer the network declares, else the
        backbone's last convolution). When the network declares a
        ``gradcam_activation`` for that layer, the map is taken after it.
    class_index : {1, 0}, default=1
        1 explains the logit of ``classes_[1]``, 0 its negation (``classes_[0]``).
    output : int, optional
        For a network with ``k`` outputs (multi-label: one logit per finding;
        multi-class: one per class), the output to explain, ``0 <= output < k``.
        ``None`` explains the first (the only one of a binary network).

    Returns
    -------
    ndarray of shape (N, H, W)
        ``ReLU(sum_k w_k A_k)`` with ``w_k`` the spatial mean of the gradient of the
        logit with respect to channel ``k`` of the target map, upsampled
        (bilinear) to the input size and scaled per image to ``[0, 1]``
        (all zeros where nothing speaks for the class).
    """
    import torch
    import torch.nn.functional as F

    if not isinstance(x, torch.Tensor) or x.ndim != 4:
        raise DataError(
            f"gradcam expects a (N, C, H, W) tensor; got "
            f"{tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__}."
        )
    if class_index not in (0, 1):
        raise ConfigurationError(f"class_index must be 0 or 1; got {class_index!r}.")
    layer = target_layer if target_layer is not None else default_target_layer(module)
    activation = _declared_activation(module, layer)
    captured: list[torch.Tensor] = []

    def hook(_m: nn.Module, _inp: object, out: torch.Tensor) -> None:
        captured.append(out)

    handle = layer.register_forward_hook(hook)
    was_training = module.training
    module.eval()
    try:
        device = next((p.device for p in module.parameters()), torch.device("cpu"))
        # Inputs require grad so frozen backbones still build a graph to the target map.
        xin = x.detach().to(device).float().clone().requires_grad_(True)
        with torch.enable_grad():
            outputs = module(xin).reshape(x.shape[0], -1)
            if output is not None and not 0 <= int(output) < outputs.shape[1]:
                raise ConfigurationError(
                    f"output must be in [0, {outputs.shape[1]}) for this network's "
                    f"{outputs.shape[1]} outputs; got {output!r}."
                )
            logits = outputs[:, 0 if output is None else int(output)]
            if not captured:
                raise ConfigurationError(
                    "The Grad-CAM target layer was not used in the forward pass; pass a layer "
                    "of this network as target_layer."
                )
            acts = captured[-1]
            if acts.ndim != 4:
                raise ConfigurationError(
                    f"The Grad-CAM target layer outputs shape {tuple(acts.shape)}; a (N, C, h, w) "
                    "feature map is needed. Pass a convolutional layer as target_layer."
                )
            target = logits if class_index == 1 else -logits
            (grads,) = torch.autograd.grad(target.sum(), acts)
        weights = grads.mean(dim=(2, 3), keepdim=True)
        maps = acts.detach() if activation is None else activation(acts.detach())
        cam = torch.relu((weights * maps).sum(dim=1, keepdim=True))
        cam = F.interpolate(cam, size=x.shape[-2:], mode="bilinear", align_corners=False)[:, 0]
        peak = cam.flatten(1).max(dim=1).values.clamp_min(1e-12)[:, None, None]
        cam = torch.where(peak > 1e-12, cam / peak, torch.zeros_like(cam))
        return cam.clamp(0.0, 1.0).cpu().numpy().astype(np.float64)
    finally:
        handle.remove()
        module.train(was_training)
