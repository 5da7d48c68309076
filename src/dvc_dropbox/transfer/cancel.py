"""One cancel event per transfer (design.md decision 20): every wait of the transfer ends at once.

A transfer can wait a long time on purpose: a `retry_after` of 300 s, an exponential backoff, the
committer's per-entry retry, a chunk loop of a 10 GiB file. Ctrl-C (SIGINT) or a one-cause stop
(`transfer/fatal.py`) must end all of them within a second or two, in every worker thread, not
when each wait runs out. So each wait is a wait on one `Cancel` event:

- the pacer's sleeps (backoff, `retry_after`, a shared pause, the polls of a job) are
  `Cancel.wait`, and every attempt of a request starts with `Cancel.check` (so each chunk of an
  upload session and each range of a download checks it on its way out);
- the batch committer's queued entries fail at once (`listen`);
- a file's chunk loop checks it between chunks.

A cancelled wait raises `TransferCancelled`: a cancelled upload session is never committed (so no
partial object appears on the remote) and a cancelled download is never moved into place.

The pacer is one per client and may outlive a transfer (a notebook, `dvc.api`): `Cancels` gives
each transfer on it a fresh event (overlapping transfers of one client share it: what stops one
stops the other, which would meet the same cause), and a new transfer starts with an unset one.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Callable

from ..errors import DropboxRemoteError

Listener = Callable[["TransferCancelled"], None]


class TransferCancelled(DropboxRemoteError):
    """A wait (or a chunk loop) ended because its transfer was cancelled.

    Only ever seen inside a transfer that is stopping: the stop switch keeps it quiet and ends
    the transfer with its own one message (transfer/fatal.py)."""


class Cancel:
    """The cancel event of one transfer: set once, seen by every wait at once."""

    def __init__(self, listeners: tuple[Listener, ...] = ()):
        self._event = threading.Event()
        self._lock = threading.Lock()
        self._listeners = listeners
        self.why = ""

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def set(self, why: str) -> None:
        """Cancel the transfer (idempotent: the first reason stays)."""
        with self._lock:
            if self._event.is_set():
                return
            self.why = why
            self._event.set()
        error = self.error()
        for listener in self._listeners:
            listener(error)

    def error(self) -> TransferCancelled:
        return TransferCancelled(f"cancelled: {self.why or 'the transfer is stopping'}")

    def check(self) -> None:
        """Raise `TransferCancelled` if the transfer is cancelled."""
        if self._event.is_set():
            raise self.error()

    def wait(self, seconds: float) -> None:
        """Sleep `seconds`, or raise `TransferCancelled` as soon as the transfer is cancelled."""
        if self._event.wait(max(0.0, seconds)):
            raise self.error()


class Cancels:
    """The cancel event of the transfer(s) running on one pacer (see the module docstring)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._listeners: list[Listener] = []
        self._depth = 0
        self._current = Cancel()

    @property
    def current(self) -> Cancel:
        """The event the waits of this moment check (an unset one between transfers)."""
        return self._current

    def listen(self, listener: Listener) -> None:
        """Call `listener(error)` whenever a transfer's event is set (the batch committer)."""
        with self._lock:
            self._listeners.append(listener)
            self._current = self._fresh() if not self._depth else self._current

    def _fresh(self) -> Cancel:
        return Cancel(tuple(self._listeners))

    @contextlib.contextmanager
    def transfer(self) -> Iterator[Cancel]:
        """One transfer: a fresh event for the outermost, shared by those nested or overlapping."""
        with self._lock:
            if self._depth == 0:
                self._current = self._fresh()
            self._depth += 1
            cancel = self._current
        try:
            yield cancel
        finally:
            with self._lock:
                self._depth -= 1
                if self._depth == 0:
                    # Waits after the transfer (the next command of a notebook) start unset.
                    self._current = self._fresh()


__all__ = ["Cancel", "Cancels", "TransferCancelled"]
