"""Reads and writes at an offset of one file that several threads share (ranged downloads).

A ranged download writes each range at its offset from its own thread, while another thread
reads the written prefix back for the md5 (downloads.py). `os.pwrite`/`os.pread` take the offset
with the call, so the threads never share a file position: the fast path, on every POSIX system.
Windows has neither call. There each write or read seeks, then writes or reads, under one lock
per file: the threads' descriptors are duplicates (`os.dup`), and duplicates share one position
(on Windows as on POSIX), so a lock per descriptor would not keep one thread's seek from moving
another's write. The writes are copies into the OS's cache, so the lock is held for about a
millisecond per 4 MiB block while the network, not the disk, is the bound.
"""

from __future__ import annotations

import os
import threading
from typing import Optional, Union

Bytes = Union[bytes, bytearray, memoryview]


def have_positioned_calls() -> bool:
    """Whether `os` has `pread` and `pwrite` (every POSIX system; not Windows).

    Asked when each file's PositionedIO is made (not at import), so a test can take them away.
    """
    return hasattr(os, "pread") and hasattr(os, "pwrite")


class PositionedIO:
    """Offset reads and writes of one file, safe from many threads, whatever the platform.

    One instance per file: every descriptor passed in must be that file's (the one it was opened
    with, or a duplicate of it), since the fallback's lock guards the position they share.
    """

    def __init__(self, positioned: Optional[bool] = None):
        self.positioned = have_positioned_calls() if positioned is None else positioned
        self._lock = threading.Lock()

    def write(self, fd: int, data: Bytes, offset: int) -> None:
        """Write all of `data` at `offset` (a short write goes on where it stopped)."""
        view = memoryview(data)
        if self.positioned:
            while view:
                written = os.pwrite(fd, view, offset)
                view, offset = view[written:], offset + written
            return
        with self._lock:
            os.lseek(fd, offset, os.SEEK_SET)
            while view:
                view = view[os.write(fd, view) :]

    def read(self, fd: int, size: int, offset: int) -> bytes:
        """Up to `size` bytes at `offset`; fewer only at the end of the file, b"" past it."""
        if self.positioned:
            return os.pread(fd, size, offset)
        with self._lock:
            os.lseek(fd, offset, os.SEEK_SET)
            return os.read(fd, size)
