"""One client connection: reads requests, sends responses, and routes each request by its path.

`/2/...` goes to `calls.ApiCall`, `/oauth2/...` to the OAuth pages, `/_emulator...` to the
control API, `/_links/...` to `downloads`. What is here is plumbing the others share: writing a
response in one send, draining or refusing a body, hanging up politely (or, for a lost-answer
fault, not at all), the request log.
"""

from __future__ import annotations

import contextlib
import datetime
import email.utils
import http.client
import secrets
import socket
import sys
import time
import traceback
import urllib.parse
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any, Callable, Optional, Union

from dropbox_emulator import __version__
from dropbox_emulator.control import api as control_api
from dropbox_emulator.exchange import Request, Response
from dropbox_emulator.handlers.contract import MAX_PAYLOAD
from dropbox_emulator.http import calls, downloads, headers
from dropbox_emulator.http.bandwidth import Stream
from dropbox_emulator.http.bodies import MAX_SMALL_BODY, READ_BLOCK, BodyReader, ClientGone, Drop
from dropbox_emulator.oauth import pages

if TYPE_CHECKING:
    from dropbox_emulator.http.server import Server
    from dropbox_emulator.runtime import Runtime

IDLE_TIMEOUT_S = 300
LINGER_S = 10  # how long a refused body may keep arriving (discarded) before we hang up

Endpoint = Callable[["Runtime", Request], Response]


_date_cache: tuple[int, str] = (0, "")


def _http_date() -> str:
    """The Date header, formatted once a second (formatdate was ~5% of a small request)."""
    global _date_cache
    now = int(time.time())
    second, text = _date_cache
    if second != now:
        text = email.utils.formatdate(now, usegmt=True)
        _date_cache = (now, text)
    return text


class Connection(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "dropbox-emulator/" + __version__
    sys_version = ""
    timeout = IDLE_TIMEOUT_S
    disable_nagle_algorithm = True
    server: Server
    _rid: Optional[str] = None
    _lingered = False
    _answer_lost = False
    raw_requestline: bytes
    pacer: Stream  # this connection's share of the bandwidth caps

    @property
    def runtime(self) -> Runtime:
        return self.server.runtime

    def setup(self) -> None:
        super().setup()
        self.pacer = self.server.bandwidth.stream()

    # -- the request log -----------------------------------------------------------------------

    def log_request(self, code: Any = "-", size: Any = "-") -> None:
        # The request line without its query: `?authorization=` and `?arg=` may carry secrets.
        method, _, rest = self.requestline.partition(" ")
        target, _, version = rest.partition(" ")
        line = " ".join(part for part in (method, target.split("?", 1)[0], version) if part)
        self.log_message('"%s" %s %s', line, str(code), str(size))

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.verbose:
            stamp = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds")
            stamp = stamp.replace("+00:00", "Z")
            sys.stderr.write(f"dropbox-emulator: {stamp} {self.address_string()} {format % args}\n")

    # -- http.server hooks ---------------------------------------------------------------------

    def send_error(
        self, code: int, message: Optional[str] = None, explain: Optional[str] = None
    ) -> None:
        # http.server's own errors (bad request line, huge headers...) as text, never HTML.
        self.close_connection = True
        self._rid = None
        text = message or self.responses.get(code, ("Error",))[0]
        with contextlib.suppress(OSError):
            self.respond(Response.text(code, text), close=True)

    def _request_line(self) -> Optional[list[str]]:
        """The request line's words once its version is checked, or None (answered)."""
        self.command = None  # type: ignore[assignment]  # set in case of error on the first line
        self.request_version = version = self.default_request_version
        self.close_connection = True
        requestline = str(self.raw_requestline, "iso-8859-1").rstrip("\r\n")
        self.requestline = requestline
        words = requestline.split()
        if not words:
            return None
        if len(words) >= 3:  # enough to determine the protocol version
            version = words[-1]
            try:
                if not version.startswith("HTTP/"):
                    raise ValueError
                base_version_number = version.split("/", 1)[1]
                numbers = base_version_number.split(".")
                # RFC 2145 3.1: one dot, separate integers, leading zeros ignored.
                if len(numbers) != 2:
                    raise ValueError
                if any(not part.isdigit() or len(part) > 10 for part in numbers):
                    raise ValueError
                version_number = int(numbers[0]), int(numbers[1])
            except (ValueError, IndexError):
                self.send_error(HTTPStatus.BAD_REQUEST, f"Bad request version ({version!r})")
                return None
            if version_number >= (1, 1) and self.protocol_version >= "HTTP/1.1":
                self.close_connection = False
            if version_number >= (2, 0):
                self.send_error(
                    HTTPStatus.HTTP_VERSION_NOT_SUPPORTED,
                    f"Invalid HTTP version ({base_version_number})",
                )
                return None
            self.request_version = version
        if not 2 <= len(words) <= 3:
            self.send_error(HTTPStatus.BAD_REQUEST, f"Bad request syntax ({requestline!r})")
            return None
        return words

    def parse_request(self) -> bool:
        """http.server's parse_request (same checks, answers and order), with the header block
        read by `headers.read_headers` instead of the email package."""
        words = self._request_line()
        if words is None:
            return False
        command, path = words[:2]
        if len(words) == 2:
            self.close_connection = True
            if command != "GET":
                self.send_error(HTTPStatus.BAD_REQUEST, f"Bad HTTP/0.9 request type ({command!r})")
                return False
        self.command, self.path = command, path
        if self.path.startswith("//"):  # gh-87389: never a scheme-less absolute URI
            self.path = "/" + self.path.lstrip("/")
        try:
            self.headers = headers.read_headers(self.rfile)
        except http.client.LineTooLong as err:
            self.send_error(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "Line too long", str(err))
            return False
        except http.client.HTTPException as err:
            self.send_error(
                HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "Too many headers", str(err)
            )
            return False
        conntype = (self.headers.get("Connection") or "").lower()
        if conntype == "close":
            self.close_connection = True
        elif conntype == "keep-alive" and self.protocol_version >= "HTTP/1.1":
            self.close_connection = False
        expect = (self.headers.get("Expect") or "").lower()
        if (
            expect == "100-continue"
            and self.protocol_version >= "HTTP/1.1"
            and self.request_version >= "HTTP/1.1"
        ):
            return self.handle_expect_100()
        return True

    def handle_expect_100(self) -> bool:
        # Refuse an oversized upload before the client sends it.
        length = self.headers.get("Content-Length", "")
        if length.isdigit() and int(length) > MAX_PAYLOAD:
            return True  # the dispatcher answers with payload_too_large and closes
        return super().handle_expect_100()

    def do_POST(self) -> None:
        self._dispatch()

    do_GET = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = do_POST

    # -- plumbing ------------------------------------------------------------------------------

    def lose_answer(self) -> None:
        """A lost-answer fault: whatever this request would answer is not sent; the first
        `respond` cuts the connection instead (`_dispatch` catches the Drop)."""
        self._answer_lost = True

    def respond(
        self,
        response: Response,
        *,
        close: bool = False,
        count_out: bool = False,
        content_length: Optional[int] = None,
    ) -> None:
        """Write status, headers and body in one send (small responses)."""
        if self._answer_lost:
            raise Drop  # the request ran; not one byte of its answer goes out
        body = b"" if self.command == "HEAD" else response.body
        length = len(response.body) if content_length is None else content_length
        lines = [
            f"HTTP/1.1 {response.status} {self.responses.get(response.status, ('',))[0]}",
            f"Date: {_http_date()}",
            f"Server: {self.server_version}",
            f"X-Dropbox-Request-Id: {self._request_id()}",
            f"Content-Length: {length}",
        ]
        if response.content_type:
            lines.append(f"Content-Type: {response.content_type}")
        for name, value in response.headers.items():
            lines.append(f"{name}: {value}")
        if close or self.close_connection:
            self.close_connection = True
            lines.append("Connection: close")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "replace")
        if body and self.pacer.quantum() is not None:
            self.wfile.write(head)
            self.write_body(body)
        else:
            self.wfile.write(head + body if len(body) < 65536 else head)
            if len(body) >= 65536:
                self.wfile.write(body)
        if count_out:
            self.runtime.stats.add_out(len(body))
        if self.server.verbose:
            self.log_request(response.status, len(body))

    def write_body(self, data: Union[bytes, memoryview]) -> None:
        """Send (part of) a response body, paced by the bandwidth caps if there are any."""
        quantum = self.pacer.quantum()
        if quantum is None:
            self.wfile.write(data)
            return
        view = memoryview(data)
        for start in range(0, len(view), quantum):
            piece = view[start : start + quantum]
            self.pacer.pace(len(piece))
            self.wfile.write(piece)

    def _request_id(self) -> str:
        if self._rid is None:
            self._rid = secrets.token_hex(16)
        return self._rid

    def _body_reader(self) -> BodyReader:
        encoding = (self.headers.get("Transfer-Encoding") or "").strip().lower()
        if encoding == "chunked":
            return BodyReader(self.rfile, None, True, self.pacer)
        raw = (self.headers.get("Content-Length") or "0").strip()
        if not raw.isdigit():
            raise ValueError("bad Content-Length")
        return BodyReader(self.rfile, int(raw), False, self.pacer)

    def finish_body(self, reader: BodyReader) -> None:
        """Before answering without using the body: read and drop it, so the client (which sends
        it all before reading) gets our answer on a live connection. A 401 on a 64 MiB append
        must reach the SDK as AuthError, so it can refresh, not as a reset connection."""
        if reader.done:
            return
        if reader.length is None or reader.length <= MAX_PAYLOAD:
            with contextlib.suppress(ClientGone):
                if reader.discard(MAX_PAYLOAD):
                    self.runtime.stats.add_in(reader.consumed)
                    return
        self.close_connection = True  # _dispatch lingers after the answer

    def linger(self) -> None:
        """After refusing a body unread: stop sending, then throw away what the client still
        sends for a bounded time, so it reads our answer instead of a connection reset."""
        if self._lingered:
            return
        self._lingered = True
        sock = self.connection
        with contextlib.suppress(OSError, ValueError):
            self.wfile.flush()
            sock.shutdown(socket.SHUT_WR)  # also drops TLS; we only discard raw bytes below
            deadline = time.monotonic() + LINGER_S
            sock.settimeout(1.0)
            while time.monotonic() < deadline and sock.recv(READ_BLOCK):
                pass
        self.close_connection = True

    def _drop(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
        self.close_connection = True

    def latency(self) -> None:
        self.runtime.realism.sleep_ms(self.runtime.config.latency_ms)  # time-scaled

    def read_small(self, reader: BodyReader) -> Optional[bytes]:
        """The whole body, or None if it is larger than MAX_SMALL_BODY."""
        parts = []
        while not reader.done:
            part = reader.read(READ_BLOCK)
            if not part and not reader.done:
                break
            parts.append(part)
            if reader.consumed > MAX_SMALL_BODY:
                return None
        return b"".join(parts)

    # -- dispatch ------------------------------------------------------------------------------

    def _dispatch(self) -> None:
        self._rid = None
        self._answer_lost = False
        url = urllib.parse.urlsplit(self.path)
        path = url.path
        try:
            reader = self._body_reader()
        except ValueError:
            self.respond(Response.text(400, "Bad Content-Length"), close=True)
            return
        try:
            if path.startswith("/_emulator"):
                self._small(control_api.handle, url, reader, latency=False)
            elif path.startswith("/2/"):
                with self.runtime.stats.serving():
                    calls.ApiCall(self, url, reader).run()
            elif path.startswith(("/oauth2/", "/1/oauth2/")):
                # Other faults on these routes are the pages' to answer; a lost answer is ours.
                if self.runtime.faults.take_lost_answer(path.strip("/")):
                    self.lose_answer()
                self._small(pages.handle, url, reader, latency=True)
            elif path.startswith(downloads.LINK_PREFIX):
                self.latency()
                downloads.serve_link(self, path, reader)
            else:
                self.finish_body(reader)
                self.runtime.stats.request(path.lstrip("/"))  # every request counts
                self.respond(Response.text(400, f'Unknown API function: "{path.lstrip("/")}"'))
            if self.close_connection and not reader.done:
                self.linger()
        except Drop:
            self._drop()
        except ClientGone:
            self.close_connection = True

    def _small(
        self,
        endpoint: Endpoint,
        url: urllib.parse.SplitResult,
        reader: BodyReader,
        *,
        latency: bool,
    ) -> None:
        """Endpoints with small bodies (OAuth, control): read it all, call, answer."""
        if latency:
            self.latency()
        if reader.length is not None and reader.length > MAX_SMALL_BODY:
            self.respond(Response.text(400, "Request body too large"), close=True)
            self.linger()
            return
        body = self.read_small(reader)
        if body is None:
            self.respond(Response.text(400, "Request body too large"), close=True)
            return
        request = Request(
            method=self.command,
            path=url.path,
            query=urllib.parse.parse_qs(url.query, keep_blank_values=True),
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
            client_host=self.client_address[0],
        )
        try:
            response = endpoint(self.runtime, request)
        except Exception:
            traceback.print_exc(file=sys.stderr)
            response = Response.text(500, "Internal emulator error")
        self.respond(response)
