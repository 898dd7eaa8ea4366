"""cxrkit's built-in datasets, registered like any third-party plugin."""

from __future__ import annotations
