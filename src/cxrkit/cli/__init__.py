"""The ``cxrkit`` command line.

One module per subcommand (:mod:`.demo`, :mod:`.run`, :mod:`.predict`,
:mod:`.listing`, :mod:`.check`), the parser in :mod:`.parser` and the shared
option parsing in :mod:`.options`. Subcommands owned by other packages
(``embed``, ``serve``, ``train-lungs``) keep their arguments next to their code;
the parser imports a subcommand's module only when that subcommand is used.
"""

from __future__ import annotations

from .app import main
from .parser import build_parser

__all__ = ["build_parser", "main"]
