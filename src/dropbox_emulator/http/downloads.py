"""File bodies going out: downloads (Range, 206/416, HEAD) and temporary links.

Blobs are streamed in big blocks straight from their files (small ones from their bytes); a
fault may cut the body after some bytes or flip one byte in the middle of it.
"""

from __future__ import annotations

import io
import mimetypes
import urllib.parse
from pathlib import Path
from typing import TYPE_CHECKING, Optional, Union

from dropbox import files

from dropbox_emulator.control.faults import Fault
from dropbox_emulator.exchange import Response
from dropbox_emulator.handlers.contract import DownloadResult
from dropbox_emulator.http.bodies import UNSATISFIABLE, BodyReader, Drop, parse_range

if TYPE_CHECKING:
    from dropbox_emulator.http.connection import Connection
    from dropbox_emulator.runtime import Runtime

SEND_BLOCK = 4 * 1024 * 1024
TEMPORARY_LINK_TTL_S = 4 * 3600
LINK_PREFIX = "/_links/"


def etag_matches(conn: Connection, etag: str) -> bool:
    """Whether the request's If-None-Match names `etag` (or `*`): the client's copy is current."""
    wanted = conn.headers.get("If-None-Match")
    if wanted is None:
        return False
    tags = {tag.strip().removeprefix("W/") for tag in wanted.split(",")}
    return "*" in tags or etag.removeprefix("W/") in tags


def serve_result(
    conn: Connection, result: DownloadResult, header: str, fault: Optional[Fault]
) -> None:
    """A download route's answer: `header` (the encoded result) in `Dropbox-API-Result`, then
    the blob."""
    headers = {"Dropbox-API-Result": header}
    if isinstance(result.metadata, files.FileMetadata):
        # Dropbox's content endpoints support ETag caching (developers' HTTP docs: "ETag",
        # "If-None-Match" → 304): the tag names the revision, so it changes with the content.
        # A zip is made anew for each call: no revision to name, no ETag.
        etag = f'W/"{result.metadata.rev}"'
        if etag_matches(conn, etag):
            conn.respond(Response(304, b"", "", {"ETag": etag}))
            return
        headers["ETag"] = etag
    serve_blob(conn, result.blob, result.size, headers, fault)


def serve_blob(
    conn: Connection,
    blob: Union[Path, bytes],
    size: int,
    headers: dict[str, str],
    fault: Optional[Fault],
    content_type: str = "application/octet-stream",
) -> None:
    start, end = 0, size  # [start, end)
    status = 200
    wanted = conn.headers.get("Range")
    if wanted is not None:
        span = parse_range(wanted, size)
        if span == UNSATISFIABLE:
            conn.respond(
                Response.text(
                    416, "Requested range not satisfiable", **{"Content-Range": f"bytes */{size}"}
                ),
                count_out=True,
            )
            return
        if isinstance(span, tuple):
            start, end = span
            status = 206
            headers["Content-Range"] = f"bytes {start}-{end - 1}/{size}"
    headers["Accept-Ranges"] = "bytes"
    length = end - start
    conn.respond(Response(status, b"", content_type, headers), content_length=length)
    if conn.command == "HEAD":
        return
    cut_after = fault.after_bytes if fault is not None and fault.drop_connection else None
    flip_at = start + length // 2 if fault is not None and fault.corrupt_body and length else None
    sent = _send(conn, blob, start, length, cut_after, flip_at)
    conn.runtime.stats.add_out(sent)
    if sent < length:
        conn.close_connection = True
    if cut_after is not None:
        raise Drop


def _send(
    conn: Connection,
    blob: Union[Path, bytes],
    start: int,
    length: int,
    cut_after: Optional[int],
    flip_at: Optional[int],
) -> int:
    """Send `length` bytes of `blob` from `start`: fewer if the blob shrank under us or the
    fault cuts after `cut_after`; the byte at `flip_at` inverted. Returns the bytes sent."""
    sent = 0
    buffer = bytearray(min(SEND_BLOCK, max(length, 1)))
    view = memoryview(buffer)
    opened = io.BytesIO(blob) if isinstance(blob, bytes) else blob.open("rb", buffering=0)
    with opened as source:
        source.seek(start)
        while sent < length:
            want = min(len(buffer), length - sent)
            if cut_after is not None:
                want = min(want, cut_after - sent)
                if want <= 0:
                    break
            got = source.readinto(view[:want])
            if not got:
                break  # the client sees a short body
            if flip_at is not None and start + sent <= flip_at < start + sent + got:
                buffer[flip_at - start - sent] ^= 0xFF
            conn.wfile.write(view[:got])
            sent += got
    return sent


def new_link(runtime: Runtime, blob: Path, name: str) -> str:
    """A URL serving `blob` as `name`, without auth, for TEMPORARY_LINK_TTL_S."""
    link_id = runtime.tokens.new_link(blob, name, TEMPORARY_LINK_TTL_S)
    return f"{runtime.url}{LINK_PREFIX}{link_id}/{urllib.parse.quote(name)}"


def serve_link(conn: Connection, path: str, reader: BodyReader) -> None:
    conn.finish_body(reader)
    link_id = path[len(LINK_PREFIX) :].split("/", 1)[0]
    found = conn.runtime.tokens.link(link_id)
    if found is None:
        conn.respond(Response.text(404, "Unknown link"))
        return
    if found is False:
        conn.respond(Response.text(410, "This link has expired"))
        return
    blob, name = found
    try:
        size = blob.stat().st_size
    except OSError:
        conn.respond(Response.text(410, "This file is no longer available"))
        return
    disposition = f"attachment; filename*=UTF-8''{urllib.parse.quote(name)}"
    # Dropbox serves a temporary link with the file's own type, guessed from its name.
    content_type = mimetypes.guess_type(name, strict=False)[0] or "application/octet-stream"
    serve_blob(conn, blob, size, {"Content-Disposition": disposition}, None, content_type)
