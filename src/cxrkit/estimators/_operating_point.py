"""A saved model's operating point: the threshold ``cxrkit predict`` and ``cxrkit serve`` decide at.

A model folder may hold ``operating_point.json``::

    {"threshold": 0.31, "name": "youden (median of 10 training-fold thresholds)"}

``cxrkit run --save`` writes it when the run fitted an operating point (each
fold's threshold fitted on an inner split of that fold's training patients,
never on test images); a user may also write it by hand. Without it a model
decides at 0.5.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import ConfigurationError

__all__ = ["OPERATING_POINT_FILENAME", "read_operating_point", "write_operating_point"]

#: Optional file in a model folder: ``{"threshold": 0.31, "name": "sensitivity 0.95"}``.
OPERATING_POINT_FILENAME = "operating_point.json"


def read_operating_point(
    directory: str | Path,
    config: dict[str, Any] | None = None,
    threshold: float | None = None,
) -> dict[str, Any] | None:
    """Return the operating point of the model folder ``directory``, or ``None`` (decide at 0.5).

    Parameters
    ----------
    directory : path-like
        A model folder.
    config : dict, optional
        The folder's ``config.json``; its ``"operating_point"`` is used when the
        folder has no ``operating_point.json``.
    threshold : float, optional
        A threshold given on the command line: it wins over the folder's.

    Returns
    -------
    dict or None
        ``{"threshold": t, "name": str}``.

    Raises
    ------
    ConfigurationError
        When the threshold is not a number in (0, 1).
    """
    directory = Path(directory)
    if threshold is not None:
        point: Any = {"threshold": threshold, "name": "set by --threshold"}
    elif (directory / OPERATING_POINT_FILENAME).is_file():
        try:
            point = json.loads((directory / OPERATING_POINT_FILENAME).read_text())
        except json.JSONDecodeError as exc:
            raise ConfigurationError(
                f"'{directory / OPERATING_POINT_FILENAME}' is not valid JSON ({exc}); expected "
                '{"threshold": 0.31, "name": "..."}. Fix the file or pass --threshold.'
            ) from None
    else:
        point = (config or {}).get("operating_point")
    if point is None:
        return None
    t = point.get("threshold") if isinstance(point, dict) else None
    if isinstance(t, bool) or not isinstance(t, (int, float)) or not 0.0 < float(t) < 1.0:
        raise ConfigurationError(
            f"The operating point of '{directory}' must have a 'threshold' in (0, 1); got "
            f"{point!r}. Fix {OPERATING_POINT_FILENAME} or pass --threshold."
        )
    return {"threshold": float(t), "name": str(point.get("name") or "")}


def write_operating_point(directory: str | Path, threshold: float, name: str) -> Path:
    """Write ``operating_point.json`` into the model folder ``directory`` and return its path."""
    if not 0.0 < float(threshold) < 1.0:
        raise ConfigurationError(f"An operating point must lie in (0, 1); got {threshold!r}.")
    path = Path(directory) / OPERATING_POINT_FILENAME
    path.write_text(json.dumps({"threshold": float(threshold), "name": name}, indent=2) + "\n")
    return path
