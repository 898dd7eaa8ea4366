"""``python -m cxrkit``: the command line."""

from .cli import main

raise SystemExit(main())
