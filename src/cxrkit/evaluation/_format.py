"""Plain-JSON conversion and short readable text of report values."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "jsonable",
    "format_number_value",
    "format_validity_numbers",
    "value_of",
    "fmt",
    "with_ci",
]


def jsonable(obj: Any) -> Any:
    """Return ``obj`` as plain JSON types; NaN and infinities become null."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return [jsonable(v) for v in obj.tolist()]
    if isinstance(obj, np.generic):
        return jsonable(obj.item())
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if obj is None or isinstance(obj, (str, int, bool)):
        return obj
    if isinstance(obj, Path):
        return str(obj)
    return str(obj)


def format_number_value(x: Any, *, max_items: int = 4, digits: int = 3, depth: int = 0) -> str:
    """Format a validity-check number as short readable text.

    Floats are rounded to ``digits``; ``None``/NaN read ``n/a`` and empty strings
    ``(empty)``; lists show their first ``max_items`` entries and ``(+N more)``;
    nested dicts and lists deeper than one level are summarised by their size.
    """
    x = jsonable(x)
    if x is None:
        return "n/a"
    if isinstance(x, bool):
        return str(x)
    if isinstance(x, float):
        return f"{x:.{digits}g}" if abs(x) >= 10**digits else f"{round(x, digits):g}"
    if isinstance(x, str):
        return x if x.strip() else "(empty)"
    if isinstance(x, dict):
        if depth >= 1:
            return f"{{{len(x)} fields}}"
        items = list(x.items())
        body = ", ".join(
            f"{k}: {format_number_value(v, max_items=max_items, digits=digits, depth=depth + 1)}"
            for k, v in items[:max_items]
        )
        more = f", (+{len(items) - max_items} more)" if len(items) > max_items else ""
        return "{" + body + more + "}"
    if isinstance(x, list):
        if depth >= 1 and any(isinstance(v, (dict, list)) for v in x):
            return f"[{len(x)} items]"
        body = ", ".join(
            format_number_value(v, max_items=max_items, digits=digits, depth=depth + 1)
            for v in x[:max_items]
        )
        more = f", (+{len(x) - max_items} more)" if len(x) > max_items else ""
        return "[" + body + more + "]"
    return str(x)


def format_validity_numbers(numbers: Any) -> str:
    """Format the "Numbers" cell of the Validity table as readable ``key=value`` pairs."""
    if not isinstance(numbers, dict):
        return format_number_value(numbers)
    return "; ".join(f"{k}={format_number_value(v)}" for k, v in numbers.items())


def value_of(v: Any) -> float:
    """Return the float of a figure (a number or a ``{"value": ...}`` dict), NaN if none."""
    if isinstance(v, dict):
        v = v.get("value")
    try:
        return float(v)
    except (TypeError, ValueError):
        return float("nan")


def fmt(v: Any, digits: int = 3) -> str:
    """Format a figure with ``digits`` decimals, ``n/a`` when undefined."""
    x = value_of(v)
    return "n/a" if not math.isfinite(x) else f"{x:.{digits}f}"


def with_ci(entry: Any) -> str:
    """Format a metric entry as ``value [ci_low, ci_high]``, ``n/a`` when it is undefined."""
    entry = entry if isinstance(entry, dict) else {}
    if not math.isfinite(value_of(entry)):
        return "n/a"
    return f"{fmt(entry)} [{fmt(entry.get('ci_low'))}, {fmt(entry.get('ci_high'))}]"
