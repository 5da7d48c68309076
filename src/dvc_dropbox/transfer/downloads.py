"""Downloads through the SDK (design.md decision 8).

`files/download` is streamed in large reads into a temporary file next to the target, hashed while
written, and moved into place only when size and `content_hash` match the metadata. A dropped
connection resumes with a `Range` request.

A file of several chunks (the remote's `chunk_size`) is fetched as chunk-sized ranges, up to
MAX_PARALLEL_RANGES at once, each written at its offset and hashed by the thread that received
it; the ranges start on 4 MiB blocks, so their block digests make up the whole file's
`content_hash`. The md5 a DVC object's name carries covers the file in order: a helper thread
reads the temporary file back as its written prefix grows (from the page cache), overlapping the
download instead of following it. The offset writes and reads go through `positioned.py`
(`os.pwrite`/`os.pread`, or a seek under a lock where those are missing: Windows).
"""

from __future__ import annotations

import contextlib
import inspect
import io
import logging
import os
import tempfile
import threading
import uuid
from typing import Any, BinaryIO, Callable, Optional, TypeVar

from .. import sdk_internals
from ..errors import DropboxIntegrityError
from ..options import BLOCK_SIZE, DEFAULT_CHUNK_SIZE, DEFAULT_JOBS, MiB
from . import upload_progress
from .content_hash import ContentHasher, NameHasher, ObjectName, hexdigest_of_parts
from .pacer import Pacer
from .positioned import PositionedIO

DOWNLOAD_READ_SIZE = BLOCK_SIZE
# Tries of one download whose bytes fail a check (content_hash, or the md5 its DVC name says).
MAX_VERIFY_ATTEMPTS = 3
# Ranges of one file downloaded at once (never more than the remote's `jobs`), as rclone's
# multi-thread streams. Each holds about two 4 MiB reads. On the emulator (loopback, 2 cores) one
# stream already outruns the md5, so 2 and 4 measured alike; on Dropbox a stream is slower.
MAX_PARALLEL_RANGES = 4
# Extra range streams (beyond each file's own thread) across all files of one client: with many
# large files in flight DVC's own threads already fill the line, and memory stays bounded.
MAX_RANGE_HELPERS = 6

logger = logging.getLogger("dvc.dvc_dropbox")
T = TypeVar("T")


class DropboxObjectMismatchError(DropboxIntegrityError):
    """A DVC object on Dropbox whose bytes do not have the md5 its name says."""


class Downloads:
    """The download paths of one client."""

    # Set by Uploads.__init__ in Transfers; the defaults serve a Downloads of its own.
    chunk_size: int = DEFAULT_CHUNK_SIZE
    jobs: int = DEFAULT_JOBS
    _helpers_lock = threading.Lock()

    def __init__(self, client: Any, pacer: Pacer):
        self.client = client
        self.pacer = pacer

    @property
    def _range_helpers(self) -> threading.Semaphore:
        """Slots for extra range streams, shared by every file this client downloads."""
        slots: Optional[threading.Semaphore] = self.__dict__.get("_range_helper_slots")
        if slots is None:
            with self._helpers_lock:
                slots = self.__dict__.setdefault(
                    "_range_helper_slots", threading.Semaphore(MAX_RANGE_HELPERS)
                )
        return slots

    def download_file(
        self, path: str, lpath: str, callback: Any = None, dvc_object: Optional[ObjectName] = None
    ) -> Any:
        """Download `path` to `lpath`; the file appears only once its bytes are verified.

        Verified against Dropbox's content_hash and, for a DVC object (`dvc_object`: the md5 its
        path names; the filesystem knows which paths are DVC's), against that md5 (see
        `_verified_download`).
        """
        directory = os.path.dirname(os.path.abspath(lpath))

        def once(callback: Any) -> Any:
            name = f".{os.path.basename(lpath)}.{uuid.uuid4().hex}.dropbox-tmp"
            tmp = os.path.join(directory, name)
            try:
                with open(tmp, "w+b") as out:  # read back by the md5 of a ranged download
                    metadata = self._fill(out, path, callback, dvc_object, ranged=True)
                os.replace(tmp, lpath)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.remove(tmp)
                raise
            return metadata

        return self._verified_download(path, once, callback)

    def read_object(
        self, path: str, callback: Any = None, dvc_object: Optional[ObjectName] = None
    ) -> BinaryIO:
        """The verified bytes of `path` (a DVC object, e.g. a `.dir` listing) in a temporary file.

        DVC reads `.dir` objects with `open`: a streaming reader cannot take back bytes it has
        handed out, so these are downloaded whole and checked before the caller sees any.
        """

        def once(callback: Any) -> BinaryIO:
            out = tempfile.TemporaryFile()  # noqa: SIM115 - handed to the caller
            try:
                self._fill(out, path, callback, dvc_object)
                out.seek(0)
            except BaseException:
                out.close()
                raise
            return out

        return self._verified_download(path, once, callback)

    def _verified_download(self, path: str, once: Callable[[Any], T], callback: Any) -> T:
        """`once(callback)`, tried again when the bytes fail a check (MAX_VERIFY_ATTEMPTS in all).

        Bytes broken on the way come right on a second try; an object whose bytes changed on
        Dropbox does not, and is then reported.
        """
        callback = callback or upload_progress.no_callback()
        for attempt in range(1, MAX_VERIFY_ATTEMPTS + 1):
            try:
                return once(callback)
            except DropboxIntegrityError as exc:
                if attempt == MAX_VERIFY_ATTEMPTS:
                    raise
                why = (
                    "its md5 is not the one its name says"
                    if isinstance(exc, DropboxObjectMismatchError)
                    else "its bytes do not match Dropbox's content_hash"
                )
                logger.warning(
                    "download of %s failed its check (%s); downloading it again (try %d of %d)",
                    path,
                    why,
                    attempt + 1,
                    MAX_VERIFY_ATTEMPTS,
                )
                callback.absolute_update(0)
        raise AssertionError("unreachable")

    def _fill(
        self,
        out: BinaryIO,
        path: str,
        callback: Any,
        dvc_object: Optional[ObjectName],
        *,
        ranged: bool = False,
    ) -> Any:
        """Write the whole of `path` to `out`, checked; its metadata.

        `ranged`: `out` is a fresh read-write file, so a file of several chunks may be fetched as
        parallel ranges (`_fill_ranges`).
        """
        metadata, response = self.pacer.call(self.client.files_download, path)
        callback.set_size(metadata.size)
        named = NameHasher(dvc_object) if dvc_object is not None else None
        ranges = plan_ranges(metadata.size, self.chunk_size)
        if ranged and len(ranges) > 1:
            self._fill_ranges(out, path, metadata, response, ranges, callback, named)
        else:
            hasher = ContentHasher()
            self._stream_to(out, path, metadata, response, hasher, callback, named)
            self._check_download(path, metadata, hasher)
        if named is not None and not named.matches():
            raise DropboxObjectMismatchError(
                f"{path} on Dropbox does not hold the DVC object its name says (md5 "
                f"{named.name.md5}, its bytes have md5 {named.hexdigest()}): it was changed "
                "in Dropbox outside DVC. Nothing was installed. Delete it in Dropbox, then push "
                "that object again from a DVC cache that has it (`dvc push` in a clone whose "
                "cache holds it). DVC skips objects it finds on the remote, and all of a tracked "
                "folder whose .dir object it finds: if the object is in a folder, delete that "
                ".dir object too"
            )
        return metadata

    def _stream_to(
        self,
        out: BinaryIO,
        path: str,
        metadata: Any,
        response: Any,
        hasher: ContentHasher,
        callback: Any,
        named: Optional[NameHasher] = None,
    ) -> None:
        """Write the body to `out`; a dropped connection resumes with a Range request after the
        pacer's (reported) wait. The pacer's policy tells a dropped connection from a full disk."""
        current = [response]
        cancel = self.pacer.cancels.current

        def download() -> None:
            resp = current.pop() if current else self._resume_download(path, metadata, hasher.size)
            try:
                for block in resp.iter_content(chunk_size=DOWNLOAD_READ_SIZE):
                    cancel.check()  # Ctrl-C or a one-cause stop: this file is not installed
                    out.write(block)
                    hasher.update(block)
                    if named is not None:
                        named.update(block)
                    callback.relative_update(len(block))
            except OSError:  # requests' errors are OSErrors too
                if hasher.size >= metadata.size:
                    return  # every byte arrived: the content_hash check decides
                raise
            finally:
                resp.close()

        self.pacer.retry(download)

    def _fill_ranges(
        self,
        out: BinaryIO,
        path: str,
        metadata: Any,
        response: Any,
        ranges: list[tuple[int, int]],
        callback: Any,
        named: Optional[NameHasher],
    ) -> None:
        """Fetch `ranges` of `path` into `out` on up to MAX_PARALLEL_RANGES streams, checked.

        The first range is read from `response` (the whole-file answer that told us the size,
        closed once its range is in); every other range is its own `Range` request. Returns only
        once every thread it started has ended, so nothing writes to `out` afterwards.
        """
        fd = out.fileno()
        os.ftruncate(fd, metadata.size)
        job = _RangedJob(ranges, callback)
        first = job.claim()  # range 0, the one `response` holds, is this thread's
        # Each thread has its own descriptor (_OwnFd).
        follower: Optional[threading.Thread] = None
        helpers: list[threading.Thread] = []
        slots = self._range_helpers
        try:
            if named is not None:
                follower = _start(job.run_guarded, job.follow, _OwnFd(fd), named)
            wanted = min(MAX_PARALLEL_RANGES, max(1, self.jobs), len(ranges)) - 1
            for _ in range(wanted):
                if not slots.acquire(blocking=False):
                    break  # other files hold the helpers: this thread fetches the rest itself
                try:
                    helpers.append(
                        _start(self._range_helper, job, slots, _OwnFd(fd), path, metadata)
                    )
                except BaseException:
                    slots.release()
                    raise
            job.run_guarded(self._fetch_ranges, job, fd, path, metadata, first, response)
        except BaseException:
            job.stop()
            raise
        finally:
            with contextlib.suppress(Exception):
                response.close()  # unread when an error came first
            try:
                for helper in helpers:
                    helper.join()
                job.finish()  # every range is in: the md5 follower ends with the last byte
                if follower is not None:
                    follower.join()
            except BaseException:
                job.stop()  # interrupted while waiting: the others end at their next block
                raise
        job.raise_failure()
        total = sum(hasher.size for hasher in job.hashers)
        if total != metadata.size:
            raise self._corrupt(path, metadata, total, "incomplete")
        got = hexdigest_of_parts(job.hashers)
        if metadata.content_hash is not None and got != metadata.content_hash:
            raise self._corrupt(path, metadata, total, got)

    def _range_helper(
        self, job: _RangedJob, slots: threading.Semaphore, fd: _OwnFd, path: str, metadata: Any
    ) -> None:
        try:
            with fd as own:
                job.run_guarded(self._fetch_ranges, job, own, path, metadata, job.claim(), None)
        finally:
            slots.release()

    def _fetch_ranges(
        self,
        job: _RangedJob,
        fd: int,
        path: str,
        metadata: Any,
        index: Optional[int],
        response: Any,
    ) -> None:
        """Fetch range `index` (from `response` if given), then claim and fetch ranges until none
        is left or another stream failed."""
        while index is not None:
            self._fetch_range(job, index, fd, path, metadata, response)
            response = None
            index = job.claim()

    def _fetch_range(
        self, job: _RangedJob, index: int, fd: int, path: str, metadata: Any, response: Any
    ) -> None:
        """Range `index` into `fd` at its offset; a dropped connection resumes where it broke."""
        start, end = job.ranges[index]
        hasher = job.hashers[index]
        current = [response] if response is not None else []
        cancel = self.pacer.cancels.current

        def download() -> None:
            pos = start + hasher.size
            if pos >= end or job.stopped:
                return
            # The whole-file answer goes on past range 0: it is cut (and its connection lost)
            # at the range's end. A range's own answer is read to its end, so urllib3 puts the
            # connection back in the pool for the next range instead of a new TLS handshake.
            whole = bool(current)
            resp = current.pop() if current else self._open_range(path, metadata, pos, end)
            try:
                for block in resp.iter_content(chunk_size=DOWNLOAD_READ_SIZE):
                    if job.stopped:
                        return  # another range failed: its error is the one reported
                    cancel.check()  # Ctrl-C or a one-cause stop: this file is not installed
                    if len(block) > end - pos:
                        if not whole:
                            raise DropboxIntegrityError(
                                f"download of {path} is corrupt: Dropbox sent more bytes than "
                                f"the range {start}-{end - 1} it was asked for; try again"
                            )
                        block = block[: end - pos]
                    job.positioned.write(fd, block, pos)
                    hasher.update(block)
                    pos += len(block)
                    job.wrote(index, len(block))
                    if whole and pos >= end:
                        return
            except OSError:  # requests' errors are OSErrors too
                if pos >= end:
                    return
                raise
            finally:
                resp.close()

        self.pacer.retry(download)

    def _open_range(self, path: str, metadata: Any, start: int, end: int) -> Any:
        """A response whose body is bytes [start, end) of the revision `metadata` describes."""
        headers = {"Range": f"bytes={start}-{end - 1}"}
        again, response = self.pacer.call(self._files_download, path, headers)
        if again.rev != metadata.rev:
            response.close()
            raise DropboxIntegrityError(f"{path} changed on Dropbox while it was downloading")
        if response.status_code != 206:
            # The server ignored the range and sent everything: keep only our slice.
            chunks = response.iter_content(chunk_size=DOWNLOAD_READ_SIZE)
            return _SkippingResponse(response, chunks, start, limit=end)
        return response

    def _files_download(self, path: str, headers: Optional[dict[str, str]]) -> Any:
        """`files_download`, with extra HTTP headers (Range) on every SDK version.

        SDK 12.2 takes `extra_headers`; 12.0/12.1 do not, but a clone of the client with added
        headers (sharing its HTTP session) sends them.
        """
        if not headers:
            return self.client.files_download(path)
        if _download_takes_headers(self.client):
            return self.client.files_download(path, extra_headers=headers)
        # The client's own extra headers (e.g. its path root) must stay on the ranged clone.
        ranged = self.client.clone(headers={**sdk_internals.headers(self.client), **headers})
        return ranged.files_download(path)

    def _resume_download(self, path: str, metadata: Any, offset: int) -> Any:
        headers = {"Range": f"bytes={offset}-"}
        again, response = self.pacer.call(self._files_download, path, headers)
        if again.rev != metadata.rev:
            response.close()
            raise DropboxIntegrityError(f"{path} changed on Dropbox while it was downloading")
        if response.status_code != 206:
            # No partial content: the server sent everything; skip what we already have.
            skip = offset
            raw_iter = response.iter_content(chunk_size=DOWNLOAD_READ_SIZE)
            return _SkippingResponse(response, raw_iter, skip)
        return response

    @staticmethod
    def _check_download(path: str, metadata: Any, hasher: ContentHasher) -> None:
        got = hasher.hexdigest()
        if hasher.size != metadata.size or (
            metadata.content_hash is not None and got != metadata.content_hash
        ):
            raise Downloads._corrupt(path, metadata, hasher.size, got)

    @staticmethod
    def _corrupt(path: str, metadata: Any, size: int, got: str) -> DropboxIntegrityError:
        return DropboxIntegrityError(
            f"download of {path} is corrupt: got {size} bytes with content_hash "
            f"{got}, Dropbox says {metadata.size} bytes with {metadata.content_hash}; "
            "nothing was written, try again"
        )

    def open_read(self, path: str, *, start: int = 0, end: Optional[int] = None) -> BinaryIO:
        """A streaming, buffered reader of bytes [start, end) of `path` (end exclusive).

        A read of the whole file checks content_hash when it reaches the end.
        """
        from dropbox import exceptions

        if end is not None and end <= start:
            return io.BufferedReader(_DownloadStream(None, None, verify=False))
        headers: Optional[dict[str, str]] = None
        if start > 0 or end is not None:
            last = "" if end is None else str(end - 1)
            headers = {"Range": f"bytes={start}-{last}"}
        try:
            metadata, response = self.pacer.call(self._files_download, path, headers)
        except exceptions.HttpError as exc:
            if exc.status_code == 416:  # range beyond the end: nothing to read
                return io.BufferedReader(_DownloadStream(None, None, verify=False))
            raise
        verify = headers is None  # only a whole-file read can be checked against content_hash
        if headers is not None and response.status_code == 200:
            # The server ignored the range: serve the slice from the full body.
            chunks = response.iter_content(chunk_size=DOWNLOAD_READ_SIZE)
            response = _SkippingResponse(response, chunks, start, limit=end)
        stream = _DownloadStream(response, metadata, verify=verify, path=path)
        return io.BufferedReader(stream, buffer_size=MiB)


def plan_ranges(size: int, range_size: int) -> list[tuple[int, int]]:
    """[start, end) of each range of a `size`-byte file: `range_size` bytes (a multiple of the
    4 MiB block, so each range's block digests are the file's), the last one shorter."""
    if range_size <= 0 or range_size % BLOCK_SIZE:
        raise ValueError("range_size must be a positive multiple of 4 MiB")
    return [(start, min(size, start + range_size)) for start in range(0, size, range_size)]


class WrittenPrefix:
    """How far a file written as ranges (each front to back, in any order) is complete from 0."""

    def __init__(self, ranges: list[tuple[int, int]]):
        self._ranges = ranges
        self._written = [0] * len(ranges)
        self._first = 0  # the first range not complete
        self.value = 0  # bytes [0, value) are written

    def wrote(self, index: int, count: int) -> None:
        """Range `index` got `count` more bytes, right after those it had."""
        self._written[index] += count
        while self._first < len(self._ranges):
            start, end = self._ranges[self._first]
            self.value = start + self._written[self._first]
            if self.value < end:
                return
            self._first += 1


class _RangedJob:
    """What the threads of one ranged download share: the next range to claim, each range's
    content hasher, the written prefix the md5 follows, the progress bar, the first failure,
    and the offset writes and reads of their one file (`positioned`)."""

    def __init__(self, ranges: list[tuple[int, int]], callback: Any):
        self.ranges = ranges
        self.positioned = PositionedIO()
        self.hashers = [ContentHasher() for _ in ranges]
        self.callback = callback
        self._prefix = WrittenPrefix(ranges)
        self._next = 0
        self._changed = threading.Condition()
        self._finished = False
        self.stopped = False
        self._failure: Optional[BaseException] = None

    def claim(self) -> Optional[int]:
        """The next range to fetch (lowest first, so the prefix grows steadily), or None."""
        with self._changed:
            if self.stopped or self._next >= len(self.ranges):
                return None
            self._next += 1
            return self._next - 1

    def wrote(self, index: int, count: int) -> None:
        with self._changed:
            self._prefix.wrote(index, count)
            self.callback.relative_update(count)  # under the lock: DVC's bars are not thread-safe
            self._changed.notify_all()

    def follow(self, own_fd: _OwnFd, named: NameHasher) -> None:
        """Feed `named` the file's bytes in order, as far as they are written, until finish()."""
        with own_fd as fd:
            self._follow(fd, named)

    def _follow(self, fd: int, named: NameHasher) -> None:
        pos = 0
        while True:
            with self._changed:
                while self._prefix.value <= pos and not (self._finished or self.stopped):
                    self._changed.wait()
                if self.stopped:
                    return
                upto = self._prefix.value
                if upto <= pos:
                    return  # finished: every byte written is hashed
            while pos < upto:
                block = self.positioned.read(fd, min(DOWNLOAD_READ_SIZE, upto - pos), pos)
                if not block:
                    raise OSError(f"the temporary file ended at {pos} bytes while hashing it")
                named.update(block)
                pos += len(block)

    def run_guarded(self, fn: Callable[..., None], *args: Any) -> None:
        """`fn(*args)`; its failure stops the other threads and is kept for raise_failure()."""
        try:
            fn(*args)
        except BaseException as exc:
            with self._changed:
                if self._failure is None:
                    self._failure = exc
            self.stop()

    def stop(self) -> None:
        with self._changed:
            self.stopped = True
            self._changed.notify_all()

    def finish(self) -> None:
        with self._changed:
            self._finished = True
            self._changed.notify_all()

    def raise_failure(self) -> None:
        if self._failure is not None:
            raise self._failure


class _OwnFd:
    """A duplicate of the temporary file's descriptor for one helper thread, closed by it.

    If the download is interrupted (Ctrl-C while joining) the file is closed and removed while a
    helper may still be writing its last block: through its own descriptor that block lands in
    the removed file, never in whatever file reuses the closed descriptor's number.
    """

    def __init__(self, fd: int):
        self.fd = os.dup(fd)

    def __enter__(self) -> int:
        return self.fd

    def __exit__(self, *exc: object) -> None:
        os.close(self.fd)


def _start(target: Callable[..., None], *args: Any) -> threading.Thread:
    thread = threading.Thread(target=target, args=args, name="dropbox-download", daemon=True)
    try:
        thread.start()
    except BaseException:
        for arg in args:
            if isinstance(arg, _OwnFd):
                os.close(arg.fd)  # the thread that would have closed it never ran
        raise
    return thread


def _download_takes_headers(client: Any) -> bool:
    try:
        return "extra_headers" in inspect.signature(client.files_download).parameters
    except (TypeError, ValueError):
        return False


class _SkippingResponse:
    """A download response whose first `skip` bytes (and anything past `limit`) are dropped."""

    def __init__(self, response: Any, chunks: Any, skip: int, limit: Optional[int] = None):
        self.response = response
        self.status_code = 206
        self._chunks = chunks
        self._skip = skip
        self._remaining = None if limit is None else limit - skip

    def iter_content(self, chunk_size: int = DOWNLOAD_READ_SIZE) -> Any:
        for block in self._chunks:
            if self._skip:
                cut = min(self._skip, len(block))
                block, self._skip = block[cut:], self._skip - cut
            if self._remaining is not None:
                block = block[: self._remaining]
                self._remaining -= len(block)
            if block:
                yield block
            if self._remaining == 0:
                return

    def close(self) -> None:
        self.response.close()


class _DownloadStream(io.RawIOBase):
    """A readable over a download response; closes it, and verifies whole-file reads at EOF."""

    def __init__(self, response: Any, metadata: Any, *, verify: bool, path: str = ""):
        super().__init__()
        self._response = response
        self._metadata = metadata
        self._chunks: Any = None if response is None else response.iter_content(MiB)
        self._buffer = memoryview(b"")
        self._hasher: Optional[ContentHasher] = ContentHasher() if verify else None
        self._path = path
        self.metadata = metadata

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if not len(self._buffer):
            self._buffer = memoryview(self._next_block())
        size = min(len(buffer), len(self._buffer))
        buffer[:size] = self._buffer[:size]
        self._buffer = self._buffer[size:]  # a view: no copy of the rest
        return size

    def _next_block(self) -> bytes:
        if self._chunks is None:
            return b""
        for block in self._chunks:
            if block:
                if self._hasher is not None:
                    self._hasher.update(block)
                    if self._hasher.size >= self._metadata.size:
                        # Check before handing out the last bytes: readers that stop at the
                        # known size never ask for the end of the stream.
                        Downloads._check_download(self._path, self._metadata, self._hasher)
                        self._hasher = None
                return block
        self._chunks = None
        if self._hasher is not None:
            Downloads._check_download(self._path, self._metadata, self._hasher)
        return b""

    def close(self) -> None:
        if self._response is not None:
            self._response.close()
            self._response = None
        super().close()
