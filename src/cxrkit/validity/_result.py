"""The result of one validity guard, and a text table of several."""

from __future__ import annotations

import textwrap
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

__all__ = ["GuardResult", "format_guards", "STATUSES"]

Status = Literal["PASS", "WARN", "FAIL"]
STATUSES: tuple[str, ...] = ("PASS", "WARN", "FAIL")


@dataclass
class GuardResult:
    """Outcome of one validity guard.

    Parameters
    ----------
    name : str
        Short guard name, e.g. ``"patient_leakage"`` or ``"confounding:view"``.
    status : {"PASS", "WARN", "FAIL"}
        ``PASS``: nothing found; ``WARN``: the result may be inflated, look at the
        numbers; ``FAIL``: the evaluation is invalid as set up (e.g. patients on
        both sides of a split).
    summary : str
        One line saying what was found.
    numbers : dict, default={}
        The measurements behind the status (JSON-serialisable values).
    advice : str, default=""
        What to do about a WARN or FAIL (empty for PASS).

    Examples
    --------
    >>> r = GuardResult("patient_leakage", "PASS", "No patient on both sides.", {"n_leaking": 0})
    >>> r.to_dict()["status"]
    'PASS'
    """

    name: str
    status: Status
    summary: str
    numbers: dict[str, Any] = field(default_factory=dict)
    advice: str = ""

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(
                f"The 'status' of GuardResult {self.name!r} must be one of {STATUSES}. "
                f"Got {self.status!r} instead."
            )

    @property
    def ok(self) -> bool:
        """``True`` when the status is ``PASS``."""
        return self.status == "PASS"

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict (for ``metrics.json`` and reports)."""
        return _jsonable(asdict(self))


def _jsonable(obj: Any) -> Any:
    """Turn numpy scalars/arrays and tuples into plain JSON types."""
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set)):
        return [_jsonable(v) for v in obj]
    if hasattr(obj, "tolist"):  # numpy scalar or array
        return _jsonable(obj.tolist())
    if isinstance(obj, float) and obj != obj:  # NaN
        return None
    return obj


def _fmt_number(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.3g}"
    if isinstance(v, (list, tuple)):
        items = [_fmt_number(x) for x in v[:5]]
        return "[" + ", ".join(items) + (", ..." if len(v) > 5 else "") + "]"
    if isinstance(v, Mapping):
        return (
            "{"
            + ", ".join(f"{k}: {_fmt_number(x)}" for k, x in list(v.items())[:6])
            + (", ..." if len(v) > 6 else "")
            + "}"
        )
    return str(v)


def format_guards(results: Iterable[GuardResult], *, width: int = 100, numbers: bool = True) -> str:
    """Render guard results as a plain-text table (for the CLI and text reports).

    Parameters
    ----------
    results : iterable of GuardResult
    width : int, default=100
        Line width used to wrap summaries and advice.
    numbers : bool, default=True
        Also list each guard's scalar numbers (nested tables are left to reports).

    Returns
    -------
    str
        One block per guard, then a count of PASS / WARN / FAIL.
    """
    results = list(results)
    if not results:
        return "No validity guards were run."
    name_w = max(len(r.name) for r in results)
    indent = " " * (name_w + 9)
    lines = [f"{'STATUS':<6}  {'GUARD':<{name_w}}  SUMMARY", "-" * min(width, name_w + 60)]
    for r in results:
        wrapped = textwrap.wrap(r.summary, max(20, width - len(indent))) or [""]
        lines.append(f"{r.status:<6}  {r.name:<{name_w}}  {wrapped[0]}")
        lines.extend(indent + w for w in wrapped[1:])
        if numbers:
            scalars = {
                k: v
                for k, v in r.numbers.items()
                if not isinstance(v, Mapping)
                and not (isinstance(v, (list, tuple)) and v and isinstance(v[0], Mapping))
            }
            if scalars:
                text = "; ".join(f"{k}={_fmt_number(v)}" for k, v in scalars.items())
                lines.extend(
                    textwrap.wrap(
                        text, max(40, width), initial_indent=indent, subsequent_indent=indent
                    )
                )
        if r.advice and r.status != "PASS":
            lines.extend(
                textwrap.wrap(
                    "-> " + r.advice,
                    max(40, width),
                    initial_indent=indent,
                    subsequent_indent=indent + "   ",
                )
            )
    counts = {s: sum(r.status == s for r in results) for s in STATUSES}
    lines.append("-" * min(width, name_w + 60))
    lines.append(", ".join(f"{counts[s]} {s}" for s in STATUSES))
    return "\n".join(lines)
