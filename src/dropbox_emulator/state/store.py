"""The emulator's Dropbox state: SQLite metadata plus content-addressed blob files.

Layout under `data_dir`:
  files.sqlite3            the tree (entries incl. deletion markers, revisions), upload sessions
                           and their pieces, list_folder cursors, async jobs, counters
  blobs/<h[:2]>/<h>        file contents, named by their Dropbox content hash (`blobs`)
  sessions/<sid>.<offset>  upload-session pieces (`sessions`)
  tmp/                     assembly of multi-piece sessions, zips being served

`Store` only composes the parts, each with its own job (`tree`, `sessions`, `listing`, `jobs`,
`blobs`), and does what spans several of them in one transaction.
"""

from __future__ import annotations

import sqlite3
from contextlib import AbstractContextManager
from pathlib import Path

from dropbox_emulator.config import EmulatorConfig
from dropbox_emulator.state.blobs import Blobs
from dropbox_emulator.state.database import Database
from dropbox_emulator.state.listing import Jobs, Listing
from dropbox_emulator.state.namespaces import MOUNTS, TEAM_NAMESPACE_ID
from dropbox_emulator.state.sessions import Sessions
from dropbox_emulator.state.tree import Entry, FileCommit, Tree


class Store:
    def __init__(self, data_dir: Path, config: EmulatorConfig):
        self.data_dir = Path(data_dir)
        self.config = config
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.database = Database(self.data_dir / "files.sqlite3")
        self.blobs = Blobs(self.data_dir / "blobs", self.database)
        self.tree = Tree(self.database, config)
        self.sessions = Sessions(self.database, self.blobs, self.data_dir)
        self.listing = Listing(self.database)
        self.jobs = Jobs(self.database)
        with self.database.tx() as db:
            self._mount_points(db)

    # -- shortcuts for the unit tests (tests/unit/emulator/test_store.py) -----------------------

    @property
    def _db(self) -> sqlite3.Connection:
        """The raw connection: tests check the triggers with their own SQL."""
        return self.database.connection

    @property
    def session_ttl_s(self) -> float:
        return self.sessions.ttl_s

    @session_ttl_s.setter
    def session_ttl_s(self, value: float) -> None:
        self.sessions.ttl_s = value

    @property
    def tmp_dir(self) -> Path:
        """Scratch files in the data dir (same filesystem as the blobs): assemblies, zips."""
        return self.data_dir / "tmp"

    def blob_path(self, content_hash: str) -> Path:
        return self.blobs.path(content_hash)

    def used_bytes(self) -> int:
        return self.tree.used_bytes()

    # -- what spans several parts ----------------------------------------------------------------

    def finish_upload(self, ns: str, commit: FileCommit, session_id: str) -> Entry:
        """Place a finished session's file and mark the session finished, in one transaction
        (one per batch entry instead of two)."""
        with self.database.tx() as db:
            entry = self.tree.place_file(db, ns, commit)
            self.sessions.mark_finished(db, session_id)
            return entry

    def transaction(self) -> AbstractContextManager[sqlite3.Connection]:
        """Several writes in one SQLite commit; each write's own transaction becomes a
        savepoint inside it (a failing one rolls back alone). Keep it short: it holds the
        database lock every other request needs."""
        return self.database.tx()

    def reset(self) -> None:
        """Forget everything (POST /_emulator/reset)."""
        with self.database.tx() as db:
            self.tree.clear(db)
            self.sessions.clear(db)
            self.listing.clear(db)
            self.jobs.clear(db)
            self.blobs.clear()
            self._mount_points(db)

    def _mount_points(self, db: sqlite3.Connection) -> None:
        """The team root's folders where the member's home and the team folder are mounted."""
        self.tree.ensure_folders(db, TEAM_NAMESPACE_ID, [(m.path, m.folder_id) for m in MOUNTS])

    def close(self) -> None:
        self.database.close()
