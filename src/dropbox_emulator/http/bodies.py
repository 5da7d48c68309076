"""Bodies on the wire: request bodies read in big blocks (fixed length or chunked) and spooled
to disk while their Dropbox content hash is computed, and `Range` headers for file bodies."""

from __future__ import annotations

import queue
import re
import threading
from io import BufferedIOBase
from typing import TYPE_CHECKING, BinaryIO, Optional, Union

from dropbox_emulator.handlers.contract import MAX_PAYLOAD
from dropbox_emulator.state.blobs import ContentHasher

if TYPE_CHECKING:
    from dropbox_emulator.http.bandwidth import Stream

READ_BLOCK = 1024 * 1024
MAX_SMALL_BODY = 32 * 1024 * 1024  # rpc/OAuth/control bodies are JSON or forms, read into memory
PIPELINE_DEPTH = 8  # blocks in flight between the reading and the hashing thread (8 MiB)


class ClientGone(Exception):
    """The client hung up or sent an unreadable body; nothing more can be answered."""


class Drop(Exception):
    """A fault asked for the connection to be cut."""


class BodyReader:
    """Reads a request body of known length, or `Transfer-Encoding: chunked`, in big blocks;
    paced by the connection's bandwidth caps (`bandwidth.Stream`) when there are any."""

    def __init__(
        self,
        rfile: BufferedIOBase,
        length: Optional[int],
        chunked: bool,
        pacer: Optional[Stream] = None,
    ):
        self._rfile = rfile
        self.length = length  # None when chunked
        self._chunked = chunked
        self._chunk_left = 0
        self._pacer = pacer
        self.consumed = 0
        self.done = not chunked and not length

    def read(self, size: int) -> bytes:
        """Up to `size` bytes (exactly `size` of a fixed-length body while it lasts)."""
        if self.done:
            return b""
        pacer = self._pacer
        quantum = pacer.quantum() if pacer is not None else None
        try:
            if pacer is None or quantum is None:
                return self._read_some(size)
            parts = []
            while size > 0 and not self.done:
                part = self._read_some(min(size, quantum))
                pacer.pace(len(part))  # the bytes have arrived; the next ones wait their turn
                if not part:
                    break
                parts.append(part)
                size -= len(part)
            return parts[0] if len(parts) == 1 else b"".join(parts)
        except (OSError, ValueError) as exc:
            raise ClientGone(str(exc)) from None

    def _read_some(self, size: int) -> bytes:
        data = self._read_chunked(size) if self._chunked else self._read_fixed(size)
        self.consumed += len(data)
        return data

    def _read_fixed(self, size: int) -> bytes:
        assert self.length is not None
        want = min(size, self.length - self.consumed)
        data = self._rfile.read(want) if want > 0 else b""
        if len(data) < want:
            raise ClientGone("request body ended early")
        if self.consumed + len(data) >= self.length:
            self.done = True
        return data

    def _read_chunked(self, size: int) -> bytes:
        if self._chunk_left == 0:
            line = self._rfile.readline(1026)
            if not line.endswith(b"\n"):
                raise ClientGone("bad chunk header")
            self._chunk_left = int(line.split(b";", 1)[0].strip() or b"x", 16)
            if self._chunk_left < 0:
                raise ClientGone("bad chunk size")
            if self._chunk_left == 0:
                for _ in range(64):  # trailers, up to the blank line
                    if self._rfile.readline(8192) in (b"\r\n", b"\n", b""):
                        break
                self.done = True
                return b""
        data = self._rfile.read(min(size, self._chunk_left))
        if not data:
            raise ClientGone("request body ended early")
        self._chunk_left -= len(data)
        if self._chunk_left == 0 and self._rfile.readline(3).strip():
            raise ClientGone("bad chunk trailer")
        return data

    def discard(self, limit: int = MAX_PAYLOAD) -> bool:
        """Read and drop the rest (at most `limit` bytes); True if the body was fully read."""
        while not self.done and self.consumed <= limit:
            if not self.read(READ_BLOCK) and not self.done:
                return False
        return self.done


class Oversized(Exception):
    """A chunked body grew past MAX_PAYLOAD."""


def spool_inline(reader: BodyReader, out: BinaryIO) -> str:
    hasher = ContentHasher()
    while True:
        block = reader.read(READ_BLOCK)
        if not block:
            return hasher.hexdigest()
        hasher.update(block)
        out.write(block)
        if reader.consumed > MAX_PAYLOAD:  # chunked bodies have no length up front
            raise Oversized


def spool_pipelined(reader: BodyReader, out: BinaryIO) -> str:
    """Like spool_inline, but hashing and writing run in a second thread while this one reads
    the socket: TLS decryption, SHA-256 and file writes all release the GIL, so they overlap."""
    blocks: queue.Queue[Optional[bytes]] = queue.Queue(maxsize=PIPELINE_DEPTH)
    hasher = ContentHasher()
    failure: list[BaseException] = []

    def consume() -> None:
        try:
            while True:
                block = blocks.get()
                if block is None:
                    return
                hasher.update(block)
                out.write(block)
        except BaseException as exc:  # reported by the reading thread
            failure.append(exc)
            while blocks.get() is not None:  # unblock the reader until it stops
                pass

    worker = threading.Thread(target=consume, name="spool", daemon=True)
    worker.start()
    try:
        while not failure:
            block = reader.read(READ_BLOCK)
            if not block:
                break
            blocks.put(block)
            if reader.consumed > MAX_PAYLOAD:
                raise Oversized
    finally:
        blocks.put(None)
        worker.join()
    if failure:
        raise failure[0]
    return hasher.hexdigest()


UNSATISFIABLE = "unsatisfiable"
_RANGE = re.compile(r"^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$")


def parse_range(header: str, size: int) -> Union[tuple[int, int], str, None]:
    """`Range` → (start, end) half-open, UNSATISFIABLE, or None (ignore it, serve everything).

    Only one range is served; multi-range or malformed headers are ignored, as RFC 9110 allows.
    """
    match = _RANGE.match(header)
    if match is None:
        return None
    first, last = match.groups()
    if first == "" and last == "":
        return None
    if first == "":
        suffix = int(last)
        if suffix == 0 or size == 0:
            return UNSATISFIABLE
        return max(0, size - suffix), size
    start = int(first)
    if last != "" and int(last) < start:
        return None  # syntactically invalid: ignored
    if start >= size:
        return UNSATISFIABLE
    end = size - 1 if last == "" else int(last)
    return start, min(end, size - 1) + 1
