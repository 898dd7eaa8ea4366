"""cxrkit's built-in transforms, registered like any third-party plugin."""

from __future__ import annotations
