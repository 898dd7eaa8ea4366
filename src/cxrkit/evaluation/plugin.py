"""cxrkit's built-in evaluation, registered like any third-party plugin."""

from __future__ import annotations
