"""Messages for people at a terminal: warnings in plain words, hints as command-line flags.

cxrkit's errors and warnings are written for the Python API (``on_error='skip'``);
at the command line the same advice is a flag (``--data-option on_error=skip``).
Python warnings reach the terminal as one ``warning:`` line each, without the
file and line of the code that raised them.
"""

from __future__ import annotations

import re
import sys
import textwrap
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TextIO

__all__ = ["cli_terms", "terminal_warnings", "recorded_warnings"]

#: Loader options that the command line passes with ``--data-option KEY=VALUE``.
_LOADER_OPTIONS = (
    "on_error",
    "patient_pattern",
    "check_images",
    "labels_dir",
    "allow_outside_root",
    "uncertain",
    "split",
    "target",
)
_CALL = re.compile(r"(?:cxrkit\.datasets\.)?load_dataset\(\.\.\., (\w+)=('[^']*'|\S+?)\)")
_OPTION = re.compile(r"(?<![\w-])(" + "|".join(_LOADER_OPTIONS) + r")=(?:'([^']*)'|(\w[^\s,;)]*))?")


def _flag(match: re.Match[str]) -> str:
    key, quoted, bare = match.group(1), match.group(2), match.group(3)
    value = quoted if quoted is not None else bare
    placeholder = "REGEX" if key == "patient_pattern" else "VALUE"
    return f"--data-option {key}={value if value else placeholder}"


def cli_terms(text: str) -> str:
    """Rewrite the Python API's loader-option hints in ``text`` as command-line flags.

    Parameters
    ----------
    text : str
        An error or warning message.

    Returns
    -------
    str
        The message with ``on_error='skip'`` written as ``--data-option on_error=skip``.

    Examples
    --------
    >>> cli_terms("Remove them, or pass on_error='skip' to leave them out.")
    'Remove them, or pass --data-option on_error=skip to leave them out.'
    """
    text = _CALL.sub(lambda m: f"{m.group(1)}={m.group(2)}", text)
    return _OPTION.sub(_flag, text)


def _show(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: TextIO | None = None,
    line: str | None = None,
) -> None:
    text = textwrap.fill(f"warning: {cli_terms(str(message))}", width=100, subsequent_indent="  ")
    print(text, file=file or sys.stderr)


@contextmanager
def terminal_warnings() -> Iterator[None]:
    """Show Python warnings raised inside the block as plain ``warning:`` lines."""
    with warnings.catch_warnings():
        # A fresh filter also resets "already shown" records, so every command shows its own.
        warnings.filterwarnings("default", category=UserWarning)
        warnings.showwarning = _show
        yield


@contextmanager
def recorded_warnings() -> Iterator[list[str]]:
    """Collect the messages of warnings raised inside the block, printing each once.

    Yields
    ------
    list of str
        Filled with each distinct message (in command-line terms) as it is raised.
    """
    seen: list[str] = []

    def keep(message: Any, category: Any, filename: Any, lineno: Any, *a: Any, **k: Any) -> None:
        text = cli_terms(str(message))
        if not issubclass(category, UserWarning):  # a library's deprecation, not a data note
            _show(text, category, filename, lineno)
        elif text not in seen:
            seen.append(text)
            _show(text, category, filename, lineno)

    with warnings.catch_warnings():
        warnings.simplefilter("always", UserWarning)
        warnings.showwarning = keep
        yield seen
