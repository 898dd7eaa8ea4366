"""Evaluation protocols, built from ordinary scikit-learn pieces.

Every protocol is a dataclass of options with one contract
(:class:`Protocol`): it declares its datasets in ``inputs`` and runs with
``run(data, *, test=None, controls=None, progress=True) -> RunResult``, which
:func:`cxrkit.evaluation.write_report` turns into a report. The hand-written
equivalent of ``Hall2020CV().run(ds)`` is, in essence::

    est, cv = Hall2020CV().build()
    for tr, te in cv.split(ds.X, ds.y, ds.groups):
        fold = clone(est).fit(ds.X[tr], ds.y[tr], groups=ds.groups[tr])
        scores[te] = fold.predict_proba(ds.X[te])[:, pos]

A third-party protocol subclasses :class:`Protocol`, implements ``evaluate``
and is registered through the ``cxrkit_register_protocols`` hook.
"""

from ._base import SLOT_FLAGS, Evaluation, InputSlot, Protocol, captured_warnings
from ._common import HALL2020_LABELS
from ._cv import Hall2020CV
from ._demo import DemoRun, demo_runs
from ._external import ExternalValidation
from ._held_out import held_out_labels
from ._multilabel import MultilabelCV
from ._opacity import Opacity2020
from ._published import Hall2020Published
from ._registry import (
    ProtocolOption,
    create_protocol,
    get_protocol_class,
    list_protocols,
    parse_option,
    protocol_options,
)
from ._unseen import Hall2020Unseen

__all__ = [
    "DemoRun",
    "HALL2020_LABELS",
    "SLOT_FLAGS",
    "Evaluation",
    "ExternalValidation",
    "Hall2020CV",
    "Hall2020Published",
    "Hall2020Unseen",
    "InputSlot",
    "MultilabelCV",
    "Opacity2020",
    "Protocol",
    "ProtocolOption",
    "captured_warnings",
    "create_protocol",
    "demo_runs",
    "get_protocol_class",
    "held_out_labels",
    "list_protocols",
    "parse_option",
    "protocol_options",
]
