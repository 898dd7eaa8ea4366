"""Any timm model as a cxrkit architecture: ``timm:NAME`` (e.g. ``timm:convnext_tiny``).

The network is ``timm.create_model(NAME, pretrained=..., num_classes=0)``: its
output is timm's pooled, pre-logits feature vector, and a cxrkit head is put
on top. Its :class:`Preprocessing` comes from the model's ``pretrained_cfg``
(input size, interpolation, mean, std, ``crop_pct``) as
``timm.data.resolve_data_config`` resolves it. Weights come through timm's own
loader: the Hugging Face hub cache (``$HF_HUB_CACHE``, default
``~/.cache/huggingface/hub``), downloaded when absent and possible.
"""

from __future__ import annotations

import logging
from typing import Any

from torch import nn

from ..errors import ConfigurationError, UnknownNameError
from ._base import CXRNet, Preprocessing
from ._extras import is_library_weights, is_none, missing_weights_error, require_extra
from ._heads import make_head
from ._weights import load_into, read_state_dict

__all__ = ["build_timm", "timm_preprocessing", "hf_hub_cache"]
logger = logging.getLogger("cxrkit.architectures")

_INTERPOLATIONS = ("nearest", "bilinear", "bicubic", "lanczos")


def hf_hub_cache(cache_dir: str | None = None) -> str:
    """Return the Hugging Face hub cache folder (``cache_dir`` when given)."""
    if cache_dir:
        return str(cache_dir)
    from huggingface_hub import constants

    return str(constants.HF_HUB_CACHE)


def _check_name(timm: Any, model_name: str) -> None:
    if not timm.is_model(model_name):
        import difflib

        close = difflib.get_close_matches(model_name.split(".")[0], timm.list_models(), n=3)
        hint = f" Did you mean {' or '.join(repr('timm:' + c) for c in close)}?" if close else ""
        raise UnknownNameError(
            f"timm has no model {model_name!r}.{hint} See timm.list_models() for the names."
        )


def timm_preprocessing(model_name: str, in_chans: int = 3) -> Preprocessing:
    """Return the preprocessing timm's ``pretrained_cfg`` declares for ``model_name``.

    ``crop_mode="squash"`` stretches the whole image; ``"center"`` keeps the
    central square after the resize to ``input_size / crop_pct``, as timm's eval
    transform does. With ``in_chans=1`` the channel means and deviations are
    averaged (timm folds the first convolution by summing its RGB weights).
    """
    timm = require_extra("timm")
    _check_name(timm, model_name)
    cfg = timm.models.get_pretrained_cfg(model_name)
    data = timm.data.resolve_data_config(pretrained_cfg=cfg.to_dict() if cfg else {})
    _, h, w = data["input_size"]
    if h != w:
        raise ConfigurationError(
            f"timm model {model_name!r} takes {h}x{w} inputs; cxrkit feeds square images. "
            "Pass input_size= to use a square size the model accepts."
        )
    interp = data.get("interpolation", "bilinear")
    if interp not in _INTERPOLATIONS:
        interp = "bicubic" if "cubic" in interp else "bilinear"
    mean, std = tuple(float(m) for m in data["mean"]), tuple(float(s) for s in data["std"])
    if in_chans == 1:
        mean = (sum(mean) / len(mean),) * 3
        std = (sum(std) / len(std),) * 3
    squash = data.get("crop_mode", "center") == "squash"
    return Preprocessing(
        input_size=int(h),
        interpolation=interp,
        mean=(mean[0], mean[1], mean[2]),
        std=(std[0], std[1], std[2]),
        channels=int(in_chans),
        crop="none" if squash else "square",
        crop_pct=1.0 if squash else float(data.get("crop_pct") or 1.0),
    )


def _create(
    timm: Any,
    model_name: str,
    pretrained: bool,
    in_chans: int,
    cache_dir: str | None,
    extra: dict[str, Any],
) -> nn.Module:
    try:
        return timm.create_model(
            model_name,
            pretrained=pretrained,
            num_classes=0,
            in_chans=in_chans,
            cache_dir=cache_dir,
            **extra,
        )
    except Exception as exc:
        if not pretrained:
            raise
        fill = f"python -c \"import timm; timm.create_model('{model_name}', pretrained=True)\""
        raise missing_weights_error(
            f"timm weights for {model_name!r}", hf_hub_cache(cache_dir), fill, exc
        ) from None


def build_timm(
    model_name: str,
    pretrained: Any = None,
    head: str = "hall2020",
    *,
    in_chans: int = 3,
    pooling: str | None = None,
    cache_dir: str | None = None,
    pretrained_strict: bool = True,
    hidden: int = 64,
    dropout: float = 0.5,
    **timm_kwargs: Any,
) -> CXRNet:
    """Return a timm model with a cxrkit head.

    Parameters
    ----------
    model_name : str
        Any name of ``timm.list_models()``, optionally with a weights tag
        (``convnext_tiny.fb_in22k``).
    pretrained : None, "default" (or "timm", "imagenet") or path
        Random weights; the weights timm publishes for the name (through its hub
        cache; ``cache_dir`` overrides the folder); or a local state dict.
    in_chans : {3, 1}, default=3
        ``1`` lets timm fold the first convolution to one channel.
    pooling : str, optional
        timm's ``global_pool`` (``"avg"``, ``"max"``, ``"avgmax"``, ``"token"``, ...).
    **timm_kwargs
        Passed to ``timm.create_model`` (``drop_rate``, ``img_size``, ...).
    """
    timm = require_extra("timm")
    _check_name(timm, model_name)
    extra = dict(timm_kwargs)
    if pooling is not None:
        extra["global_pool"] = pooling
    model = _create(
        timm, model_name, is_library_weights(pretrained), int(in_chans), cache_dir, extra
    )
    model_any: Any = model  # timm models carry num_features and pretrained_cfg
    nfeat = int(model_any.num_features)
    prep = timm_preprocessing(model_name, int(in_chans))
    net = CXRNet(
        model,
        nn.Identity(),
        make_head(head, nfeat, hidden=hidden, dropout=dropout),
        num_features=nfeat,
        preprocessing=prep,
        name=f"timm:{model_name}",
    )
    net.pooling = pooling  # type: ignore[assignment]
    first = next((n for n, m in model.named_modules() if isinstance(m, nn.Conv2d)), None)
    net.first_conv_reads_input = (
        in_chans == 3 and first is not None and model_any.pretrained_cfg.get("first_conv") == first
    )
    if not (is_none(pretrained) or is_library_weights(pretrained)):
        load_into(
            net,
            read_state_dict(pretrained),
            strict=pretrained_strict,
            key_map=lambda k: "backbone." + k,
            source=f"weights file '{pretrained}'",
        )
    return net
