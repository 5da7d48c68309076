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

The switch owns the transfer's cancel event (transfer/cancel.py): tripping it ends every wait of
the transfer at once (a worker in a 300 s `retry_after` must not keep the command alive), and
Ctrl-C trips it too (`interrupted`): the first SIGINT during a transfer is the one-line "stopped;
re-run to continue" error, after every wait ended and no file was half committed; a second
SIGINT is Python's KeyboardInterrupt, as without the plugin.

DVC's transfers run under a switch through the `generic.transfer` hook (dvc_hooks/generic.py).
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from collections.abc import Iterator
from typing import Any, Callable, Optional

from .. import sdk_errors
from ..errors import DropboxRemoteError, DropboxTransferStopped, TransferFatal
from .cancel import Cancel, Cancels

logger = logging.getLogger("dvc.dvc_dropbox")

ErrorHandler = Callable[[Any, Any, BaseException], None]

UPLOAD = "upload"
DOWNLOAD = "download"
_VERBS = {UPLOAD: ("upload", "uploaded"), DOWNLOAD: ("download", "downloaded")}
_ATTRIBUTE = "_dvc_dropbox_transfer_stop"


class Skipped(DropboxRemoteError):
    """A file not started because its transfer is stopping (only ever seen by `TransferStop`)."""


class Interrupted(TransferFatal, DropboxRemoteError):
    """Ctrl-C (SIGINT) during a transfer: the cause of its stop."""


class TransferStop:
    """The stop switch of one transfer (thread-safe: workers report to it concurrently)."""

    def __init__(self, direction: str = UPLOAD, cancel: Optional[Cancel] = None):
        if direction not in _VERBS:
            raise ValueError(f"direction must be {UPLOAD!r} or {DOWNLOAD!r}")
        self.direction = direction
        self._lock = threading.Lock()
        self.cause: Optional[BaseException] = None
        # Set when the switch trips: every wait of the transfer ends (transfer/cancel.py).
        self.cancel = cancel if cancel is not None else Cancel()
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
                self.cancel.set(f"the {self.direction} is stopping")
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

    def interrupt(self) -> None:
        """Ctrl-C: stop the transfer now (every wait ends), and end it with the one message."""
        with self._lock:
            if self.cause is None:
                self.cause = Interrupted("interrupted")
        logger.debug("Dropbox: %s interrupted", self.direction)
        self.cancel.set("interrupted")

    @property
    def interrupted(self) -> bool:
        return isinstance(self.cause, Interrupted)

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
        if self.interrupted:
            return DropboxTransferStopped(
                f"Interrupted: stopped the {verb}; what was already {done} is kept and nothing "
                f"half-{done} was left behind, so running the command again {verb}s the rest"
            )
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


def _cancels(fs: Any) -> Optional[Cancels]:
    """The cancel events of the pacer under `fs` (a DVC filesystem, or DropboxFS), if any."""
    inner = fs
    if hasattr(type(fs), "fs"):  # DVC's filesystem: its fsspec one (connected once, cached)
        try:
            inner = fs.fs
        except Exception:  # the transfer itself meets (and reports) a failed connection
            return None
    conn = getattr(inner, "_conn", None)
    cancels = getattr(getattr(conn, "pacer", None), "cancels", None)
    return cancels if isinstance(cancels, Cancels) else None


@contextlib.contextmanager
def _on_sigint(stop: TransferStop) -> Iterator[None]:
    """While inside (main thread only): the first Ctrl-C interrupts `stop`, a second is
    Python's KeyboardInterrupt (or whatever handled SIGINT before)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGINT)
    if previous in (signal.SIG_IGN, None):
        yield  # SIGINT is ignored (nohup, a parent's choice), or not set from Python: keep it
        return

    def interrupt(signum: int, frame: Any) -> None:
        if not stop.interrupted:
            # In a thread of its own: the handler runs between two bytecodes of the main thread,
            # which may hold the locks `interrupt` takes (the switch's, the committer's).
            threading.Thread(target=stop.interrupt, name="dropbox-interrupt").start()
            return
        if callable(previous):
            previous(signum, frame)
        else:
            raise KeyboardInterrupt

    try:
        signal.signal(signal.SIGINT, interrupt)
    except (ValueError, OSError):  # not the main interpreter
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


@contextlib.contextmanager
def stopping(fs: Any, direction: str) -> Iterator[TransferStop]:
    """Run one transfer on `fs` under a stop switch; raises `DropboxTransferStopped` at the end
    if the switch tripped (unless an exception is already on its way out)."""
    with _attach_lock:
        entry = getattr(fs, _ATTRIBUTE, None)
        if entry is None:
            entry = [TransferStop(direction), 0, contextlib.ExitStack()]
            setattr(fs, _ATTRIBUTE, entry)
            # The outermost transfer owns the cancel event of the pacer under it and Ctrl-C.
            cancels = _cancels(fs)
            if cancels is not None:
                entry[0].cancel = entry[2].enter_context(cancels.transfer())
            entry[2].enter_context(_on_sigint(entry[0]))
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
                entry[2].close()
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
