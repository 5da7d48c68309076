"""Request headers read without the `email` package: what `http.client.parse_headers` returns for
ordinary header blocks, at a fraction of its cost (its FeedParser was ~15% of the emulator's
CPU for a small upload).

The result is the same `http.client.HTTPMessage`, filled the way the email parser fills it (its
compat32 policy: name as sent, value without leading blanks and the line break). Blocks the
email parser reads differently (folded lines, lines without a colon, names with characters
outside the RFC 5322 field-name set) go to the email parser itself, so odd requests are read
exactly as before.
"""

from __future__ import annotations

import email.parser
import http.client
import re
from typing import Optional, Protocol

# One header line, at most. Not http.client's 64 KiB (_MAXLINE): the stone spec lets one
# upload_session/append_batch carry 500 entries in its Dropbox-API-Arg header, ~70 KB with this
# emulator's 59-character session ids and up to ~75 KB with 20-digit offsets and lengths.
# Dropbox does not publish its own header limit; 128 KiB takes every argument the spec allows.
MAX_LINE = 128 * 1024
MAX_HEADERS = 100  # http.client's _MAXHEADERS
_END = (b"\r\n", b"\n", b"")
# email.feedparser's headerRE, less its "From " and continuation cases (those take the slow path).
_SIMPLE = re.compile(r"[\041-\071\073-\176]+:")


class _Lines(Protocol):
    def readline(self, size: int = -1, /) -> bytes: ...


class Headers(http.client.HTTPMessage):
    """An HTTPMessage whose `get` is a dict lookup (first value of a name, as Message.get)."""

    _first: dict[str, str]

    def get(self, name: str, failobj: Optional[str] = None) -> Optional[str]:  # type: ignore[override]
        return self._first.get(name.lower(), failobj)


def read_headers(rfile: _Lines) -> http.client.HTTPMessage:
    """The header block after a request line; raises what `http.client.parse_headers` raises
    (LineTooLong, HTTPException for more than MAX_HEADERS lines)."""
    lines = []
    while True:
        line = rfile.readline(MAX_LINE + 1)
        if len(line) > MAX_LINE:
            raise http.client.LineTooLong("header line")
        lines.append(line)
        if len(lines) > MAX_HEADERS:
            raise http.client.HTTPException(f"got more than {MAX_HEADERS} headers")
        if line in _END:
            break
    return parse_lines(lines)


def parse_lines(lines: list[bytes]) -> http.client.HTTPMessage:
    """Header lines (the last one the blank line or b"") as an HTTPMessage."""
    message = Headers()
    first: dict[str, str] = {}
    for raw in lines[:-1]:
        line = raw.decode("iso-8859-1")
        name, colon, value = line.partition(":")
        if not colon or not _SIMPLE.fullmatch(name + ":") or "\r" in line[:-2]:
            return _email_parse(lines)
        value = value.lstrip(" \t").rstrip("\r\n")
        if "\r" in value or "\n" in value:
            return _email_parse(lines)
        message.set_raw(name, value)
        first.setdefault(name.lower(), value)
    message._first = first
    return message


def _email_parse(lines: list[bytes]) -> http.client.HTTPMessage:
    text = b"".join(lines).decode("iso-8859-1")
    parsed: http.client.HTTPMessage = email.parser.Parser(_class=http.client.HTTPMessage).parsestr(
        text
    )
    return parsed
