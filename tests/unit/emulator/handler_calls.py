"""Direct handler calls for unit tests: a `Call` and services with a real `Store`, a recording
commit and fake links.

Only for unit tests of the semantics layer; integration tests go through the SDK and the server.
"""

from __future__ import annotations

import contextlib
import hashlib
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable, Optional

from dropbox import stone_serializers

from dropbox_emulator import handlers  # noqa: F401  (register handlers)
from dropbox_emulator.config import EmulatorConfig
from dropbox_emulator.handlers.contract import HANDLERS, Body, Call
from dropbox_emulator.state.account import ACCOUNT_ID
from dropbox_emulator.state.store import Store
from tests.helpers.content_hash import content_hash


class Harness:
    """Calls handlers the way the server does, with bodies spooled to files; it is also the
    handlers' `Services`."""

    def __init__(self, data_dir: Path, **config: Any):
        self.config = EmulatorConfig(data_dir=data_dir, **config)
        self.store = Store(data_dir, self.config)
        self.spool = data_dir / "spool"
        self.spool.mkdir(exist_ok=True)
        self.commits: list[str] = []
        self.entries_refused_count = 0
        self.path_root: Any = None

    @contextlib.contextmanager
    def commit(self, namespace_id: str) -> Iterator[None]:
        self.commits.append(namespace_id)
        yield

    def temporary_link(self, blob: Path, name: str) -> str:
        return f"https://127.0.0.1/link/{hashlib.md5(str(blob).encode()).hexdigest()}/{name}"

    def revoke_token(self, access_token: str) -> None:
        pass

    def entry_failure(self, call: Call, tags: tuple[str, ...]) -> Optional[str]:
        return None

    def entries_refused(self, count: int) -> None:
        self.entries_refused_count += count

    def route_form_contention(self, batch: bool) -> bool:
        return batch  # as the default config: batches fail per entry, single commits 429

    def run_job(self, kind: str, validator: Any, work: Callable[[], object]) -> str:
        return self.store.jobs.add(kind, stone_serializers.json_encode(validator, work()))

    def body(self, data: bytes) -> Body:
        path = self.spool / secrets.token_hex(8)
        path.write_bytes(data)
        return Body(path=path, size=len(data), content_hash=content_hash(data))

    def call(self, route: str, arg: Any = None, data: Optional[bytes] = None) -> Any:
        call = Call(
            route=route,
            url_name=route,
            arg=arg,
            account_id=ACCOUNT_ID,
            access_token="t",
            path_root=self.path_root,
            body=self.body(data) if data is not None else None,
        )
        try:
            return HANDLERS[route](call, self)
        finally:
            if call.body is not None and call.body.path is not None and not call.body.taken:
                call.body.path.unlink()
