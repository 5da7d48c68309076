"""`http.headers` reads header blocks exactly as the email parser (`http.client.parse_headers`)
does: the same names, values and order, the same first value per name, on ordinary blocks (the
fast path) and on odd ones (folded lines, missing colons, bare CRs...)."""

from __future__ import annotations

import email.parser
import http.client
import io
import random

import pytest

from dropbox_emulator.http.headers import MAX_LINE, Headers, parse_lines, read_headers

SDK_BLOCK = [
    b"Host: api.dropboxapi.com\r\n",
    b"User-Agent: OfficialDropboxPythonSDKv2/12.0.2\r\n",
    b"Accept-Encoding: gzip, deflate\r\n",
    b"Connection: keep-alive\r\n",
    b"Authorization: Bearer abc.def\r\n",
    b'Dropbox-API-Arg: {"close": true}\r\n',
    b"Content-Type: application/octet-stream\r\n",
    b"Content-Length: 16384\r\n",
    b"\r\n",
]
NAMES = ["host", "Content-Length", "dropbox-api-arg", "x", "X-Y", "from", "missing"]


def _reference(lines: list[bytes]) -> http.client.HTTPMessage:
    text = b"".join(lines).decode("iso-8859-1")
    message: http.client.HTTPMessage = email.parser.Parser(_class=http.client.HTTPMessage).parsestr(
        text
    )
    return message


def _same(lines: list[bytes]) -> http.client.HTTPMessage:
    ours, ref = parse_lines(lines), _reference(lines)
    assert ours.items() == ref.items(), lines
    for name in NAMES:
        assert ours.get(name) == ref.get(name), (lines, name)
        assert ours.get(name, "dflt") == ref.get(name, "dflt"), (lines, name)
    return ours


def test_sdk_block_takes_the_fast_path() -> None:
    ours = _same(SDK_BLOCK)
    assert isinstance(ours, Headers)
    assert ours.get("content-length") == "16384"
    assert ours.get("AUTHORIZATION") == "Bearer abc.def"


@pytest.mark.parametrize(
    "odd",
    [
        b"X-Folded: a\r\n  b\r\n",  # obs-fold continuation
        b"no colon here\r\n",  # ends the header block for the email parser
        b": no name\r\n",  # a defect the email parser skips
        b"From someone\r\n",  # mbox From line
        b"X-Bare: a\rb\r\n",  # a bare CR splits the line
        b"Bad Name: v\r\n",  # space in a field name
    ],
)
def test_odd_lines_read_as_the_email_parser_reads_them(odd: bytes) -> None:
    ours = _same([SDK_BLOCK[0], odd, *SDK_BLOCK[1:]])
    assert not isinstance(ours, Headers)


def test_random_blocks_match_the_email_parser() -> None:
    rng = random.Random(12)
    pieces = [
        b"Content-Type",
        b"x",
        b":",
        b" ",
        b"\t",
        b"v",
        b"\r",
        b"From ",
        b"\xe9",
        b"=",
        b"\x00",
    ]
    for _ in range(3000):
        lines = []
        for _ in range(rng.randint(0, 5)):
            line = b"".join(rng.choice(pieces) for _ in range(rng.randint(0, 6)))
            if rng.random() < 0.7:
                line = rng.choice([b"Host", b"X-Y", b"x"]) + b":" + rng.choice([b"", b" "]) + line
            lines.append(line + rng.choice([b"\r\n", b"\n"]))
        lines.append(rng.choice([b"\r\n", b"\n", b""]))
        _same(lines)


def test_limits_raise_what_http_client_raises() -> None:
    with pytest.raises(http.client.LineTooLong):
        read_headers(io.BytesIO(b"X: " + b"a" * MAX_LINE + b"\r\n\r\n"))
    # A 500-entry append_batch argument (~75 KB at most) is one line that must be read.
    assert read_headers(io.BytesIO(b"X: " + b"a" * 80_000 + b"\r\n\r\n")).get("x")
    with pytest.raises(http.client.HTTPException, match="more than 100 headers"):
        read_headers(io.BytesIO(b"X: a\r\n" * 101 + b"\r\n"))
    assert read_headers(io.BytesIO(b"".join(SDK_BLOCK) + b"body")).get("host") == (
        "api.dropboxapi.com"
    )
