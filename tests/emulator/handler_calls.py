"""Direct handler calls for unit tests: a `Call` with a real `Store`, a no-op commit and links.

Only for unit tests of the semantics layer; integration tests go through the SDK and the server.
"""

from __future__ import annotations

import contextlib
import hashlib
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Optional

from dropbox_emulator import routes_files, routes_users  # noqa: F401  (register handlers)
from dropbox_emulator.api import HANDLERS, Body, Call
from dropbox_emulator.config import EmulatorConfig
from dropbox_emulator.store import ACCOUNT_ID, Store
from tests.helpers.content_hash import content_hash


class Harness:
    """Calls handlers the way the server does, with bodies spooled to files."""

    def __init__(self, data_dir: Path, **config: Any):
        self.config = EmulatorConfig(data_dir=data_dir, **config)
        self.store = Store(data_dir, self.config)
        self.spool = data_dir / "spool"
        self.spool.mkdir(exist_ok=True)
        self.commits: list[str] = []
        self.path_root: Any = None

    @contextlib.contextmanager
    def _commit(self, ns: str) -> Iterator[None]:
        self.commits.append(ns)
        yield

    def body(self, data: bytes) -> Body:
        path = self.spool / secrets.token_hex(8)
        path.write_bytes(data)
        return Body(path=path, size=len(data), content_hash=content_hash(data))

    def call(self, route: str, arg: Any = None, data: Optional[bytes] = None) -> Any:
        call = Call(
            route=route,
            arg=arg,
            account_id=ACCOUNT_ID,
            scopes=frozenset(),
            app_key="k",
            access_token="t",
            path_root=self.path_root,
            body=self.body(data) if data is not None else None,
            commit=self._commit,
            temporary_link=lambda blob, name: (
                f"https://127.0.0.1/link/{hashlib.md5(str(blob).encode()).hexdigest()}/{name}"
            ),
            store=self.store,
        )
        try:
            return HANDLERS[route](call)
        finally:
            if call.body is not None and not call.body.taken:
                call.body.path.unlink()
