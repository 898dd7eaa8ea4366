"""``python -m cxrkit.cli``, the same as ``cxrkit``."""

from .app import main

raise SystemExit(main())
