"""Byte progress of an upload request while the HTTP stack sends it.

The SDK takes an upload's data only as `bytes` (12.x refuses streams, so that a retry can resend
them) and hands it to requests as one body: without help, DVC's bar moves once per request, i.e.
once per 48 MiB chunk, and a file up to a chunk jumps from 0 to 100 %. Here the request keeps its
`bytes` all the way through the SDK and requests (so `Content-Length` and every header are what
they would be), and only at the last step, `Session.send` with the prepared request, its body is
swapped for a reader over the very same memory. urllib3 reads that in 16 KiB blocks; the reader
reports each MiB sent. No copy of the data is made (beyond the block being written) and nothing is
read twice from the source.

Which request reports to whom is a thread-local registration (`sending`): the SDK call runs in the
thread that registered, and only a body that *is* the registered `bytes` object is swapped, so
token refreshes and other calls on the same session pass untouched.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any, Callable, Optional

REPORT_EVERY = 1024 * 1024  # DVC's bar moves at least once per MiB sent

_current = threading.local()


class _Body:
    """A file-like view of one request's bytes; reports the bytes read so far every MiB."""

    def __init__(self, data: bytes, on_sent: Callable[[int], None]):
        self._view = memoryview(data)
        self._pos = 0
        self._on_sent = on_sent

    def __len__(self) -> int:
        return len(self._view)

    def read(self, size: Optional[int] = -1) -> bytes:
        total = len(self._view)
        if self._pos >= total:
            return b""
        end = total if size is None or size < 0 else min(total, self._pos + size)
        # Never cross a report boundary in one read, so every report is at most one MiB.
        boundary = (self._pos // REPORT_EVERY + 1) * REPORT_EVERY
        end = min(end, boundary)
        piece = self._view[self._pos : end].tobytes()
        self._pos = end
        if end in (boundary, total):
            self._on_sent(end)
        return piece

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = 0) -> int:
        # urllib3 rewinds a body it has to send again; progress never goes backwards (see caller).
        base = {0: 0, 1: self._pos, 2: len(self._view)}[whence]
        self._pos = max(0, min(len(self._view), base + offset))
        return self._pos


def no_callback() -> Any:
    """fsspec's do-nothing callback, for callers that pass none."""
    from fsspec.callbacks import DEFAULT_CALLBACK

    return DEFAULT_CALLBACK


@contextlib.contextmanager
def sending(data: bytes, on_sent: Callable[[int], None]) -> Iterator[None]:
    """While inside, a request of this thread whose body is `data` reports `on_sent(bytes_sent)`."""
    previous = getattr(_current, "slot", None)
    _current.slot = (data, on_sent)
    try:
        yield
    finally:
        _current.slot = previous


def instrument(session: Any) -> None:
    """Make `session` (a requests.Session) honour `sending`; once per session, idempotent."""
    if session is None or getattr(session, "_dvc_dropbox_progress", False):
        return
    send = session.send

    def send_reporting(request: Any, **kwargs: Any) -> Any:
        slot = getattr(_current, "slot", None)
        if slot is not None and request.body is slot[0] and len(slot[0]):
            request.body = _Body(slot[0], slot[1])
        return send(request, **kwargs)

    session.send = send_reporting
    session._dvc_dropbox_progress = True
