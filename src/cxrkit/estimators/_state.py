"""Pickled estimators carry cxrkit's model format; older pickles are upgraded explicitly."""

from __future__ import annotations

import inspect
from typing import Any

from ..errors import ModelFormatError
from ._cache import join_session, session_for_workers
from ._model_schema import FORMAT, MOVED_TO_CONFIG

__all__ = ["VersionedStateMixin"]


class VersionedStateMixin:
    """``__getstate__``/``__setstate__`` that record and check the model format.

    A pickle also names the feature-cache session folder of the process that
    wrote it, so that worker processes share cached features.
    """

    def __getstate__(self) -> dict[str, Any]:
        # Worker processes that receive this estimator share cached features in the
        # session folder of the process that sent it (see cxrkit.estimators._cache._session).
        state: dict[str, Any] = dict(super().__getstate__())  # type: ignore[call-overload]
        state["_feature_session"] = session_for_workers()
        state["_cxrkit_format"] = FORMAT
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        state = dict(state)
        join_session(state.pop("_feature_session", None))
        fmt = state.pop("_cxrkit_format", None)
        if fmt is None or fmt < FORMAT:
            state = self._upgrade_state(state)
        elif fmt > FORMAT:
            raise ModelFormatError(
                f"This pickled {type(self).__name__} has format {fmt}; this cxrkit reads "
                f"formats up to {FORMAT}. Upgrade cxrkit, or save the model with "
                "cxrkit.save_model in the version that trained it and load that folder."
            )
        super().__setstate__(state)  # type: ignore[misc]  # BaseEstimator's, next in the MRO

    @classmethod
    def _upgrade_state(cls, state: dict[str, Any]) -> dict[str, Any]:
        """Bring the state of a pickle written before format 3 up to date.

        Parameters added since get their defaults; the speed switches that became
        :func:`cxrkit.set_config` keys are dropped.
        """
        defaults: dict[str, Any] = {}
        for klass in reversed(cls.__mro__):  # the defaults of every __init__, subclass last
            init = klass.__dict__.get("__init__")
            if init is not None:
                defaults.update(
                    (name, p.default)
                    for name, p in inspect.signature(init).parameters.items()
                    if p.default is not inspect.Parameter.empty
                )
        state = {k: v for k, v in state.items() if k not in MOVED_TO_CONFIG}
        return {**{k: v for k, v in defaults.items() if k not in state}, **state}
