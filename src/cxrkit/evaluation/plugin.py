"""cxrkit's built-in evaluation protocols, registered like any third-party plugin.

The protocol classes are :class:`~cxrkit.registry.LazyFactory` objects,
imported when a protocol is looked up.
"""

from __future__ import annotations

from collections.abc import Callable

from ..hookspecs import hookimpl
from ..registry import LazyFactory

#: name -> (class as "module:attribute", description).
_BUILTINS = {
    "hall2020-cv": (
        "cxrkit.evaluation.protocols:Hall2020CV",
        "Hall et al. (2020) k-fold cross-validation of a snapshot ensemble.",
    ),
    "hall2020-unseen": (
        "cxrkit.evaluation.protocols:Hall2020Unseen",
        "Hall et al. (2020) unseen-test experiment: the 21-model ensemble.",
    ),
    "opacity2020": (
        "cxrkit.evaluation.protocols:Opacity2020",
        "The ResNet-101 airspace-opacity study (2020).",
    ),
    "hall2020-published": (
        "cxrkit.evaluation.protocols:Hall2020Published",
        "Evaluate the authors' published small-CNN snapshot ensemble (7 Keras files).",
    ),
    "external": (
        "cxrkit.evaluation.protocols:ExternalValidation",
        "Train on one dataset, test on others: per site and pooled, with covariate differences.",
    ),
    "multilabel-cv": (
        "cxrkit.evaluation.protocols:MultilabelCV",
        "Multi-label k-fold cross-validation: patient-grouped, stratified on every finding.",
    ),
    "linear-probe-cv": (
        "cxrkit.evaluation._linear_probe:LinearProbeCV",
        "Linear probe of a frozen backbone, patient-grouped k-fold cross-validation.",
    ),
}


@hookimpl
def cxrkit_register_protocols(register: Callable[..., None]) -> None:
    """Register the published studies' protocols and the linear probe."""
    for name, (target, description) in _BUILTINS.items():
        register(name, LazyFactory(target, description))
