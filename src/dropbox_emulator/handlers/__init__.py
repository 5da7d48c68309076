"""Route semantics on the SDK's stone types: one module per group of routes.

Importing this package registers every handler in `contract.HANDLERS`.
"""

from __future__ import annotations

from dropbox_emulator.handlers import auth, files, uploads, users

# The handler modules, as GET /_emulator reports them.
MODULES = tuple(module.__name__.rsplit(".", 1)[-1] for module in (auth, files, uploads, users))
