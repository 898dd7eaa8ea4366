"""Option parsing shared by the subcommands: ``KEY=VALUE`` pairs and ``NAME:ROOT`` datasets."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["echo", "key_values", "load_spec", "parse_value"]


def parse_value(text: str) -> Any:
    """Turn option text into None, a bool, an int, a float, a tuple or the text itself.

    Parameters
    ----------
    text : str
        The value as typed, e.g. ``"true"``, ``"3"``, ``"1e-4"`` or ``"a,b"``.

    Returns
    -------
    object
        The typed value.
    """
    low = text.lower()
    if low in ("none", "null"):
        return None
    if low in ("true", "false"):
        return low == "true"
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    if "," in text:
        return tuple(parse_value(t) for t in text.split(",") if t)
    return text


def key_values(pairs: Sequence[str] | None, what: str) -> dict[str, Any]:
    """Parse repeated ``KEY=VALUE`` options into a dict with typed values.

    Parameters
    ----------
    pairs : sequence of str or None
        The values given to the option.
    what : str
        The option's flag, for the error message.

    Returns
    -------
    dict
        Keys with ``-`` turned into ``_``, values through :func:`parse_value`.
    """
    out: dict[str, Any] = {}
    for pair in pairs or ():
        if "=" not in pair:
            raise SystemExit(f"cxrkit: error: {what} {pair!r} must look like key=value")
        k, v = pair.split("=", 1)
        out[k.strip().replace("-", "_")] = parse_value(v.strip())
    return out


def load_spec(spec: str, options: dict[str, Any] | None = None) -> Any:
    """Load the dataset named by ``spec`` (``NAME:ROOT``) with loader ``options``.

    Parameters
    ----------
    spec : str
        A registered dataset name, a colon and its location.
    options : dict, optional
        Keyword arguments of the loader.

    Returns
    -------
    CXRDataset
        The loaded dataset.
    """
    from ..datasets import list_datasets, load_dataset
    from ..errors import ConfigurationError

    name, _, root = spec.partition(":")
    if name not in list_datasets():
        guess = (
            "csv"
            if spec.lower().endswith(".csv")
            else "image-folder"
            if Path(spec).is_dir()
            else None
        )
        raise ConfigurationError(
            f"Unknown dataset {name!r} in {spec!r}: dataset options take the form NAME:ROOT "
            f"with NAME one of {', '.join(list_datasets())}"
            + (
                f"; for this path: {guess}:{spec}"
                if guess
                else ", e.g. csv:../shared/data/cxr-dev/metadata.csv"
            )
            + "."
        )
    return load_dataset(name, root=root or None, **(options or {}))


def echo(quiet: bool, *args: Any) -> None:
    """Print ``args`` unless ``quiet``."""
    if not quiet:
        print(*args, flush=True)
