"""cxrkit's built-in evaluation protocols, registered like any third-party plugin."""

from __future__ import annotations

from ..hookspecs import hookimpl
from ._linear_probe import LinearProbeCV
from .protocols import (
    ExternalValidation,
    Hall2020CV,
    Hall2020Published,
    Hall2020Unseen,
    Opacity2020,
)


@hookimpl
def cxrkit_register_protocols(register):  # type: ignore[no-untyped-def]
    register("hall2020-cv", Hall2020CV, description=Hall2020CV.__doc__)
    register("hall2020-unseen", Hall2020Unseen, description=Hall2020Unseen.__doc__)
    register("opacity2020", Opacity2020, description=Opacity2020.__doc__)
    register("hall2020-published", Hall2020Published, description=Hall2020Published.__doc__)
    register("external", ExternalValidation, description=ExternalValidation.__doc__)
    register("linear-probe-cv", LinearProbeCV, description=LinearProbeCV.__doc__)
