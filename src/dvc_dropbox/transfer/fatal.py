"""One cause, one message: a transfer stops at its first error that every file would meet.

dvc-objects copies file after file and hands each failure to DVC's `on_error`, which prints one
"failed to transfer" line per file: a full Dropbox or a revoked token printed ~300 lines, all with
the same cause (issue 11 item 4). A `TransferStop` is the switch of one transfer:

- the first failure `sdk_errors.transfer_fatal` recognises trips it, quietly;
- files not started yet are not started (`skip`; the put path's `put_file` raises `Skipped`,
  which the handler keeps quiet), files in flight finish, or fail quietly;
- when the transfer returns, one `DropboxTransferStopped` (a DvcException, raised `from None`)
  carries the cause's message and its fix out of it, so `dvc push`/`pull`/`fetch` print one ERROR
  line. Objects already transferred are whole (uploads commit atomically, downloads are renamed
  into place), so running the command again after the fix transfers the rest.

The switch is kept on the filesystem instance for the duration of a transfer (`stopping`), so the
per-file entry points, which run in dvc-objects' worker threads, find it. Transfers of one
filesystem that overlap or nest share one switch: a fatal cause (the account, the credentials)
is fatal for all of them alike.

DVC's transfers run under a switch through the `generic.transfer` hook (dvc_hooks/generic.py).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator
from typing import Any, Callable, Optional

from .. import sdk_errors
from ..errors import DropboxRemoteError, DropboxTransferStopped

logger = logging.getLogger("dvc.dvc_dropbox")

ErrorHandler = Callable[[Any, Any, BaseException], None]

UPLOAD = "upload"
DOWNLOAD = "download"
_VERBS = {UPLOAD: ("upload", "uploaded"), DOWNLOAD: ("download", "downloaded")}
_ATTRIBUTE = "_dvc_dropbox_transfer_stop"


class Skipped(DropboxRemoteError):
    """A file not started because its transfer is stopping (only ever seen by `TransferStop`)."""


class TransferStop:
    """The stop switch of one transfer (thread-safe: workers report to it concurrently)."""

    def __init__(self, direction: str = UPLOAD):
        if direction not in _VERBS:
            raise ValueError(f"direction must be {UPLOAD!r} or {DOWNLOAD!r}")
        self.direction = direction
        self._lock = threading.Lock()
        self.cause: Optional[BaseException] = None
        # Observability (debug log, tests): files not started, and failures after the stop.
        self.skipped = 0
        self.quieted = 0

    @property
    def stopped(self) -> bool:
        return self.cause is not None

    def skip(self) -> bool:
        """True if a file about to start must not: the transfer is stopping."""
        if self.cause is None:
            return False
        with self._lock:
            self.skipped += 1
        return True

    def check(self) -> None:
        """At the start of one file: raise `Skipped` if the transfer is stopping."""
        if self.skip():
            raise Skipped(f"not {_VERBS[self.direction][1]}: the {self.direction} stopped")

    def failed(self, exc: BaseException) -> bool:
        """Note one file's failure; True if it is to stay quiet (the transfer is stopping).

        The first transfer-fatal failure trips the switch. Once tripped, every failure is quiet:
        files not started say nothing, and those in flight most likely met the same cause.
        """
        with self._lock:
            if self.cause is None:
                if not sdk_errors.transfer_fatal(exc):
                    return False
                self.cause = exc
                # The message only: a cause may be a raw SDK error whose repr is no one's business
                # on the screen, and the debug log never gets more than the class and the text.
                logger.debug(
                    "Dropbox: stopping the %s at %s: %s",
                    self.direction,
                    type(exc).__name__,
                    sdk_errors.fatal_text(exc),
                )
                return True
            if isinstance(exc, Skipped):
                return True
            self.quieted += 1
        logger.debug(
            "Dropbox: %s failed while stopping (%s): %s",
            self.direction,
            type(exc).__name__,
            sdk_errors.fatal_text(exc),
        )
        return True

    def handler(self, on_error: Optional[ErrorHandler]) -> Optional[ErrorHandler]:
        """DVC's per-file `on_error`, quiet for what the stop covers (None stays None)."""
        if on_error is None:
            return None

        def report(from_path: Any, to_path: Any, exc: BaseException) -> None:
            if not self.failed(exc):
                on_error(from_path, to_path, exc)

        return report

    def error(self) -> DropboxTransferStopped:
        """The one error the transfer ends with (call once `stopped`)."""
        assert self.cause is not None
        verb, done = _VERBS[self.direction]
        cause = sdk_errors.fatal_text(self.cause).rstrip(". ")
        return DropboxTransferStopped(
            f"{cause}. Stopped the {verb} at this error; what was already {done} is kept, so "
            f"after the fix, running the command again {verb}s the rest"
        )

    def raise_if_stopped(self) -> None:
        if self.cause is not None:
            logger.debug(
                "Dropbox: %s stopped (%d files not started, %d more failed meanwhile)",
                self.direction,
                self.skipped,
                self.quieted,
            )
            raise self.error() from None


_attach_lock = threading.Lock()


def current(fs: Any) -> Optional[TransferStop]:
    """The switch of the transfer running on `fs`, if any."""
    entry = getattr(fs, _ATTRIBUTE, None)
    return entry[0] if entry is not None else None


def check(fs: Any) -> None:
    """At the start of one file on `fs`: raise `Skipped` if its transfer is stopping."""
    stop = current(fs)
    if stop is not None:
        stop.check()


@contextlib.contextmanager
def stopping(fs: Any, direction: str) -> Iterator[TransferStop]:
    """Run one transfer on `fs` under a stop switch; raises `DropboxTransferStopped` at the end
    if the switch tripped (unless an exception is already on its way out)."""
    with _attach_lock:
        entry = getattr(fs, _ATTRIBUTE, None)
        if entry is None:
            entry = [TransferStop(direction), 0]
            setattr(fs, _ATTRIBUTE, entry)
        entry[1] += 1
    stop: TransferStop = entry[0]
    try:
        yield stop
    finally:
        with _attach_lock:
            entry[1] -= 1
            if entry[1] == 0:
                # The next transfer on this filesystem starts afresh (the cause may be fixed).
                with contextlib.suppress(AttributeError):
                    delattr(fs, _ATTRIBUTE)
    stop.raise_if_stopped()


__all__ = [
    "DOWNLOAD",
    "UPLOAD",
    "Skipped",
    "TransferStop",
    "check",
    "current",
    "stopping",
]
