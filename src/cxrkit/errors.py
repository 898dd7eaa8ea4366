"""Exceptions raised by cxrkit.

Every exception derives from :class:`CxrkitError` *and* from the matching
builtin, so ``except ValueError`` keeps working for callers that do not know
cxrkit.
"""

from __future__ import annotations

__all__ = [
    "CxrkitError",
    "UnknownNameError",
    "DuplicateNameError",
    "ImageDecodeError",
    "DataError",
    "WeightsError",
    "ConfigurationError",
    "LeakageError",
    "ModelFormatError",
    "TrainingInterruptedError",
    "OutputPathError",
    "NonFiniteLossError",
]


class CxrkitError(Exception):
    """Base class of every error raised by cxrkit."""


class UnknownNameError(CxrkitError, KeyError):
    """A registry lookup used a name that no plugin registered."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0]) if self.args else ""


class DuplicateNameError(CxrkitError, ValueError):
    """Two plugins registered the same name."""


class ImageDecodeError(CxrkitError, ValueError):
    """An image file could not be read or decoded."""


class DataError(CxrkitError, ValueError):
    """Input data (labels, tables, arrays) is unusable as given."""


class WeightsError(CxrkitError, ValueError):
    """A weights file does not fit the network it is loaded into."""


class ConfigurationError(CxrkitError, ValueError):
    """Parameters that cannot work together."""


class LeakageError(CxrkitError, ValueError):
    """The same patient appears on both sides of a train/test split."""


class ModelFormatError(CxrkitError, ValueError):
    """A saved model folder is incomplete, damaged or not in a format this cxrkit reads."""


class TrainingInterruptedError(CxrkitError, RuntimeError):
    """An estimator whose training was interrupted was asked to predict or to be saved."""


class OutputPathError(CxrkitError, OSError):
    """An output file or folder cannot be written."""


class NonFiniteLossError(CxrkitError, FloatingPointError):
    """Training produced a NaN or infinite loss."""
