"""One SDK client with its pacer and transfer layer, cached per process.

DVC builds its filesystem objects several times per command (and with `skip_instance_cache`), so
clients are cached here, per settings and credential environment, rather than per instance.
"""

from __future__ import annotations

import os
import threading
from dataclasses import astuple, dataclass
from typing import Any, Optional

from . import sdk_errors
from .auth.credentials import CREDENTIAL_VARS
from .options import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_CHUNK_SIZE,
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_JOBS,
    DEFAULT_RETRY_WAIT_LIMIT,
    DEFAULT_TIMEOUT,
)


@dataclass(frozen=True)
class Settings:
    """What a connection depends on; equal settings share one client, pacer and transfer layer."""

    app_key: Optional[str] = None
    app_secret: Optional[str] = None
    chunk_size: int = DEFAULT_CHUNK_SIZE
    batch_size: int = DEFAULT_BATCH_SIZE
    jobs: int = DEFAULT_JOBS
    timeout: float = DEFAULT_TIMEOUT
    retry_wait_limit: float = DEFAULT_RETRY_WAIT_LIMIT
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    path_root: Optional[str] = None
    pack: bool = True


class Connection:
    """One SDK client with its pacer and transfer layer."""

    def __init__(self, settings: Settings, url: Optional[str] = None):
        from . import transfer
        from .auth.client import create_client

        self.settings = settings
        # Before the client: the start-up token renewal goes through it too.
        self.pacer = sdk_errors.new_pacer(settings.jobs, max_total_wait=settings.retry_wait_limit)
        self.client = create_client(
            settings.app_key,
            settings.app_secret,
            timeout=settings.timeout,
            connect_timeout=settings.connect_timeout,
            max_connections=max(8, settings.jobs),
            path_root=settings.path_root,
            url=url,  # only names the remote in messages
            # The DVC adapter always passes the remote's URL; without one this is fsspec/pandas
            # use, where the options come from storage_options, not from a DVC remote.
            app_key_from=None if url else "the app_key storage option",
            dvc_remote=url is not None,
            pacer=self.pacer,
        )
        self.transfers = transfer.Transfers(
            self.client,
            self.pacer,
            chunk_size=settings.chunk_size,
            batch_size=settings.batch_size,
            jobs=settings.jobs,
            pack=settings.pack,
        )
        self.checked = False

    def call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        return self.pacer.call(fn, *args, **kwargs)

    def check(self) -> None:
        """One cheap authenticated call, so bad credentials fail here and not in every worker."""
        if not self.checked:
            with sdk_errors.translate_errors(""):
                self.call(self.client.check_user, "dvc-dropbox")
            self.checked = True


_connections: dict[tuple[Any, ...], Connection] = {}
# Guards the two dicts only; building a connection (which may prompt for authorization) holds
# just its own key's lock, so one repository's prompt never blocks another's transfers.
_connections_lock = threading.Lock()
_building: dict[tuple[Any, ...], threading.Lock] = {}


def cache_key(settings: Settings) -> tuple[Any, ...]:
    """Everything that selects the credentials a connection uses.

    The settings (app key, path root, ...), the credential env vars, and the repository whose
    `.dvc/tmp` credentials file is used by default: a long-lived process (`dvc.api`, a notebook)
    serving two repositories must not reuse the first one's credentials. Outside any repository a
    relative DROPBOX_CREDENTIALS_FILE is resolved from the working directory, so that counts too.
    """
    from .auth.credentials import find_repo_root

    root = find_repo_root()
    where = root if root is not None else ("cwd", os.getcwd())
    return (*astuple(settings), *(os.environ.get(var) for var in CREDENTIAL_VARS), where)


def connection_for(settings: Settings, url: Optional[str] = None) -> Connection:
    """The process-wide connection for these settings, credential env vars and repository."""
    key = cache_key(settings)
    with _connections_lock:
        conn = _connections.get(key)
        if conn is not None:
            return conn
        building = _building.setdefault(key, threading.Lock())
    with building:
        with _connections_lock:
            conn = _connections.get(key)
        if conn is None:
            conn = Connection(settings, url)  # may prompt: outside the global lock
            with _connections_lock:
                _connections[key] = conn
                _building.pop(key, None)
        return conn
