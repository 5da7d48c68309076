"""The HTTPS server: one port for the api, content, notify and web "hosts" of Dropbox.

Transport only: TLS, HTTP/1.1 keep-alive, auth and scopes, strict argument decoding, the 150 MiB
request cap, request bodies spooled to disk while their content hash is computed, latency, rate
limits, faults, stats, and encoding results and errors the way Dropbox does. Semantics live in the
route handlers (`api.HANDLERS`), the OAuth pages in `oauth`, the control API in `control`.
"""

from __future__ import annotations

import contextlib
import email.utils
import importlib
import json
import os
import secrets
import shutil
import socket
import ssl
import sys
import tempfile
import threading
import time
import traceback
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Optional, Union

from dropbox_emulator import __version__, control, oauth, wire
from dropbox_emulator.access import Caller, authenticate
from dropbox_emulator.api import (
    ACCOUNT_ID,
    HANDLERS,
    BadInput,
    Body,
    Call,
    DownloadResult,
    PathRootFailure,
    RouteError,
    TooManyWriteOperations,
)
from dropbox_emulator.bodies import (
    MAX_PAYLOAD,
    READ_BLOCK,
    BodyReader,
    ClientGone,
    Oversized,
    parse_range,
    spool_inline,
    spool_pipelined,
)
from dropbox_emulator.certs import TLSFiles
from dropbox_emulator.config import EmulatorConfig
from dropbox_emulator.exchange import Request, Response
from dropbox_emulator.faults import Fault, Faults
from dropbox_emulator.knobs import RateLimiter, Stats, WriteLocks
from dropbox_emulator.tokens import TokenStore

MAX_SMALL_BODY = 32 * 1024 * 1024  # rpc/OAuth/control bodies are JSON or forms, read into memory
# Bodies above this are hashed and written by a helper thread while the socket is read. That
# only pays with cores to spare (the client usually runs on the same machine): on a 2-CPU box
# the hand-offs cost more than the overlap gains (measured), so it stays off there.
PIPELINE_THRESHOLD = 4 * 1024 * 1024 if (os.cpu_count() or 1) >= 4 else None
SEND_BLOCK = 4 * 1024 * 1024
HANDSHAKE_TIMEOUT_S = 30
IDLE_TIMEOUT_S = 300
LINGER_S = 10  # how long a refused body may keep arriving (discarded) before we hang up
TEMPORARY_LINK_TTL_S = 4 * 3600
LINK_PREFIX = "/_links/"

_OPTIONAL_MODULES = ("routes_auth", "routes_files", "routes_users")


def load_handlers() -> list[str]:
    """Import the handler modules so their @route decorators fill HANDLERS."""
    loaded = []
    for name in _OPTIONAL_MODULES:
        try:
            importlib.import_module(f"dropbox_emulator.{name}")
        except ModuleNotFoundError as exc:
            # Tolerated only while a module does not exist yet, not for its broken imports.
            if exc.name != f"dropbox_emulator.{name}":
                raise
            continue
        loaded.append(name)
    return loaded


def open_store(config: EmulatorConfig) -> Any:
    try:
        from dropbox_emulator.store import Store  # type: ignore[import-not-found]
    except ModuleNotFoundError as exc:
        if exc.name != "dropbox_emulator.store":
            raise
        return None
    return Store(config.data_dir, config)


class Drop(Exception):
    """A fault asked for the connection to be cut."""


class Emulator:
    """One running emulator: config, state, the knobs, and the HTTPS server."""

    def __init__(self, config: EmulatorConfig, tls: TLSFiles, *, verbose: bool = False):
        self.config = config
        self.tls = tls
        self.verbose = verbose
        self.closing = False  # set at shutdown: requests still running may then fail quietly
        self.stats = Stats()
        self.faults = Faults()
        self.locks = WriteLocks(config, self.stats)
        self.limiter = RateLimiter(config)
        config.data_dir.mkdir(parents=True, exist_ok=True)
        self.spool_dir = config.data_dir / "spool"
        shutil.rmtree(self.spool_dir, ignore_errors=True)  # leftovers of a killed run
        self.spool_dir.mkdir(parents=True, exist_ok=True)
        self.tokens = TokenStore(config.data_dir / "tokens.sqlite3")
        self.handler_modules = load_handlers()
        self.store = open_store(config)
        self.oauth = oauth.OAuth(self)
        self.httpd = EmulatorHTTPServer((config.host, config.port), self, tls.server_context())
        self.port: int = self.httpd.server_address[1]
        config.port = self.port

    @property
    def netloc(self) -> str:
        host = self.config.host
        if host in ("", "0.0.0.0", "::"):
            host = "127.0.0.1"  # listening everywhere; clients on this machine use loopback
        return f"[{host}]:{self.port}" if ":" in host else f"{host}:{self.port}"

    @property
    def url(self) -> str:
        return f"https://{self.netloc}"

    @property
    def account_id(self) -> str:
        return getattr(self.store, "account_id", None) or ACCOUNT_ID

    def reset(self) -> None:
        """POST /_emulator/reset: stats, faults, rate-limit state and the files; tokens stay."""
        self.stats.reset()
        self.faults.clear()
        self.limiter.reset()
        if self.store is not None and hasattr(self.store, "reset"):
            self.store.reset()

    def serve_forever(self) -> None:
        self.httpd.serve_forever(poll_interval=0.2)

    def shutdown(self) -> None:
        self.closing = True
        self.httpd.shutdown()

    def close(self) -> None:
        self.httpd.server_close()
        if self.store is not None and hasattr(self.store, "close"):
            with contextlib.suppress(Exception):
                self.store.close()
        self.tokens.close()
        shutil.rmtree(self.spool_dir, ignore_errors=True)

    def temporary_link(self, blob: Path, name: str) -> str:
        link_id = self.tokens.new_link(blob, name, TEMPORARY_LINK_TTL_S)
        return f"{self.url}{LINK_PREFIX}{link_id}/{urllib.parse.quote(name)}"


class EmulatorHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # idle keep-alive connections must not delay exit
    allow_reuse_address = True
    request_queue_size = 256

    def __init__(self, address: tuple[str, int], emulator: Emulator, context: ssl.SSLContext):
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.emulator = emulator
        self.ssl_context = context
        super().__init__(address, Handler)

    def finish_request(self, request: Any, client_address: Any) -> None:
        # The TLS handshake runs here, in the connection's own thread, so a client that connects
        # and never speaks cannot stall the accept loop.
        request.settimeout(HANDSHAKE_TIMEOUT_S)
        try:
            tls = self.ssl_context.wrap_socket(request, server_side=True)
        except (OSError, ssl.SSLError):
            return
        try:
            self.RequestHandlerClass(tls, client_address, self)
        finally:
            with contextlib.suppress(OSError):
                tls.close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, (OSError, ssl.SSLError, ClientGone, Drop)) or self.emulator.closing:
            return  # clients hanging up are normal
        traceback.print_exc(file=sys.stderr)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "dropbox-emulator/" + __version__
    sys_version = ""
    timeout = IDLE_TIMEOUT_S
    disable_nagle_algorithm = True
    server: EmulatorHTTPServer

    # -- plumbing ------------------------------------------------------------------------------

    @property
    def emulator(self) -> Emulator:
        return self.server.emulator

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.emulator.verbose:
            sys.stderr.write(f"dropbox-emulator: {self.address_string()} {format % args}\n")

    def send_error(self, code: int, message: Optional[str] = None, explain: Optional[str] = None):
        # http.server's own errors (bad request line, huge headers...) as text, never HTML.
        self.close_connection = True
        self._rid = None
        text = message or self.responses.get(code, ("Error",))[0]
        with contextlib.suppress(OSError):
            self._respond(Response.text(code, text), close=True)

    def handle_expect_100(self) -> bool:
        # Refuse an oversized upload before the client sends it.
        length = self.headers.get("Content-Length", "")
        if length.isdigit() and int(length) > MAX_PAYLOAD:
            return True  # the dispatcher answers with payload_too_large and closes
        return super().handle_expect_100()

    def do_POST(self) -> None:
        self._dispatch()

    do_GET = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = do_POST

    def _respond(
        self,
        response: Response,
        *,
        close: bool = False,
        count_out: bool = False,
        content_length: Optional[int] = None,
    ) -> None:
        """Write status, headers and body in one send (small responses)."""
        body = b"" if self.command == "HEAD" else response.body
        length = len(response.body) if content_length is None else content_length
        lines = [
            f"HTTP/1.1 {response.status} {self.responses.get(response.status, ('',))[0]}",
            f"Date: {email.utils.formatdate(usegmt=True)}",
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
        self.wfile.write(head + body if len(body) < 65536 else head)
        if len(body) >= 65536:
            self.wfile.write(body)
        if count_out:
            self.emulator.stats.add_out(len(body))
        if self.emulator.verbose:
            self.log_request(response.status, len(body))

    def _request_id(self) -> str:
        rid = getattr(self, "_rid", None)
        if rid is None:
            rid = self._rid = secrets.token_hex(16)
        return rid

    def _body_reader(self) -> BodyReader:
        encoding = (self.headers.get("Transfer-Encoding") or "").strip().lower()
        if encoding == "chunked":
            return BodyReader(self.rfile, None, True)
        raw = (self.headers.get("Content-Length") or "0").strip()
        if not raw.isdigit():
            raise ValueError("bad Content-Length")
        return BodyReader(self.rfile, int(raw), False)

    def _finish_body(self, reader: BodyReader) -> None:
        """Before answering without using the body: read and drop it, so the client (which sends
        it all before reading) gets our answer on a live connection. A 401 on a 64 MiB append
        must reach the SDK as AuthError, so it can refresh, not as a reset connection."""
        if reader.done:
            return
        if reader.length is None or reader.length <= MAX_PAYLOAD:
            with contextlib.suppress(ClientGone):
                if reader.discard(MAX_PAYLOAD):
                    self.emulator.stats.add_in(reader.consumed)
                    return
        self.close_connection = True  # _dispatch lingers after the answer

    def _linger(self) -> None:
        """After refusing a body unread: stop sending, then throw away what the client still
        sends for a bounded time, so it reads our answer instead of a connection reset."""
        if getattr(self, "_lingered", False):
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

    # -- dispatch ------------------------------------------------------------------------------

    def _dispatch(self) -> None:
        self._rid = None
        url = urllib.parse.urlsplit(self.path)
        path = url.path
        try:
            reader = self._body_reader()
        except ValueError:
            self._respond(Response.text(400, "Bad Content-Length"), close=True)
            return
        try:
            if path.startswith("/_emulator"):
                self._small(control.handle, url, reader, latency=False)
            elif path.startswith("/2/"):
                self._api(url, reader)
            elif path.startswith("/oauth2/"):
                self._small(self.emulator.oauth.handle, url, reader, latency=True)
            elif path.startswith(LINK_PREFIX):
                self._latency()
                self._temporary_link(path, reader)
            else:
                self._finish_body(reader)
                self._respond(Response.text(400, f'Unknown API function: "{path.lstrip("/")}"'))
            if self.close_connection and not reader.done:
                self._linger()
        except Drop:
            self._drop()
        except ClientGone:
            self.close_connection = True

    def _latency(self) -> None:
        latency = self.emulator.config.latency_ms
        if latency > 0:
            time.sleep(latency / 1000.0)

    def _small(self, endpoint: Any, url: Any, reader: BodyReader, *, latency: bool) -> None:
        """Endpoints with small bodies (OAuth, control): read it all, call, answer."""
        if latency:
            self._latency()
        if reader.length is not None and reader.length > MAX_SMALL_BODY:
            self._respond(Response.text(400, "Request body too large"), close=True)
            self._linger()
            return
        body = self._read_small(reader)
        if body is None:
            self._respond(Response.text(400, "Request body too large"), close=True)
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
            response = endpoint(self.emulator, request)
        except Exception:
            traceback.print_exc(file=sys.stderr)
            response = Response.text(500, "Internal emulator error")
        self._respond(response)

    def _read_small(self, reader: BodyReader) -> Optional[bytes]:
        parts = []
        while not reader.done:
            part = reader.read(READ_BLOCK)
            if not part and not reader.done:
                break
            parts.append(part)
            if reader.consumed > MAX_SMALL_BODY:
                return None
        return b"".join(parts)

    # -- API routes ----------------------------------------------------------------------------

    def _api(self, url: Any, reader: BodyReader) -> None:
        emulator = self.emulator
        self._latency()
        info = wire.lookup(url.path)
        if info is None:
            self._finish_body(reader)
            name = url.path[3:]
            self._respond(Response.text(400, f'Unknown API function: "{name}"'), count_out=True)
            return
        emulator.stats.request(info.url_name)
        query = urllib.parse.parse_qs(url.query, keep_blank_values=True)
        if self.command not in ("POST",) and not (
            self.command == "GET" and info.style == "download"
        ):
            self._finish_body(reader)
            self._text_error(info, f'Only POST requests are supported (got "{self.command}").')
            return

        fault = emulator.faults.take(info.url_name, info.key, download=info.style == "download")
        # corrupt_body, and drop_connection after some bytes of a download, act while serving.
        serving_fault = fault is not None and (
            fault.corrupt_body
            or (fault.drop_connection and fault.after_bytes and info.style == "download")
        )
        if fault is not None and not serving_fault:
            self._fail(info, fault, reader)
            return

        # Auth before anything is read: Dropbox answers bad tokens without taking the upload.
        caller = self._authenticate(info, query)
        if isinstance(caller, Response):
            self._finish_body(reader)
            self._respond(caller, count_out=True)
            return
        access_token, token_info = caller.access_token, caller.token
        wait = emulator.limiter.allow(token_info.digest) if token_info is not None else 0
        if wait:
            self._finish_body(reader)
            self._rate_limited("too_many_requests", wait)
            return

        try:
            path_root = None
            raw_root = self.headers.get("Dropbox-API-Path-Root")
            if raw_root is not None:
                path_root = wire.decode_path_root(raw_root)
            arg, body = self._arg_and_body(info, query, reader)
        except wire.ArgError as exc:
            self._finish_body(reader)
            self._text_error(info, str(exc))
            return
        except _Answered:
            return

        try:
            call = Call(
                route=info.key,
                arg=arg,
                account_id=token_info.account_id if token_info else emulator.account_id,
                scopes=token_info.scopes if token_info else frozenset(),
                app_key=token_info.app_key if token_info else "",
                access_token=access_token,
                path_root=path_root,
                body=body,
                commit=emulator.locks.commit,
                temporary_link=emulator.temporary_link,
                headers={k.lower(): v for k, v in self.headers.items()},
                revoke_token=(
                    (lambda: emulator.tokens.revoke_access(access_token)) if access_token else None
                ),
                store=emulator.store,
                entry_failure=lambda: emulator.faults.take_entry(info.url_name, info.key),
            )
            self._call(info, call, fault)
        finally:
            if body is not None and not body.taken:
                with contextlib.suppress(OSError):
                    body.path.unlink()

    def _text_error(self, info: wire.RouteInfo, message: str) -> None:
        self._respond(Response.text(400, wire.error_text(info, message)), count_out=True)

    def _rate_limited(self, reason: str, retry_after: int) -> None:
        body = wire.rate_limit_body(reason, retry_after)
        self._respond(
            Response(429, body.encode(), "application/json", {"Retry-After": str(retry_after)}),
            count_out=True,
        )

    def _authenticate(
        self, info: wire.RouteInfo, query: dict[str, list[str]]
    ) -> Union[Response, Caller]:
        header = self.headers.get("Authorization")
        if header is None and query.get("authorization"):
            header = query["authorization"][0]
        return authenticate(self.emulator.tokens, self.emulator.oauth, info, header)

    def _arg_and_body(
        self, info: wire.RouteInfo, query: dict[str, list[str]], reader: BodyReader
    ) -> tuple[Any, Optional[Body]]:
        if info.style == "rpc":
            self._check_content_type(info, wire.RPC_CONTENT_TYPES, required=True)
            if reader.length is not None and reader.length > MAX_SMALL_BODY:
                self._refuse_oversized(info)
            raw = self._read_small(reader)
            if raw is None:
                self._refuse_oversized(info)
            self.emulator.stats.add_in(len(raw or b""))
            return wire.decode_arg(info, raw, source="body"), None

        raw_arg = self.headers.get("Dropbox-API-Arg")
        if raw_arg is None and query.get("arg"):
            raw_arg = query["arg"][0]
        if raw_arg is None:
            raise wire.ArgError(
                'Must provide HTTP header "Dropbox-API-Arg" or URL parameter "arg".'
            )
        if not raw_arg.isascii():
            raise wire.ArgError(
                'HTTP header "Dropbox-API-Arg": header values must be ASCII; '
                "escape other characters as \\uXXXX"
            )
        arg = wire.decode_arg(info, raw_arg.encode("ascii"), source="header")

        if info.style == "download":
            self._finish_body(reader)
            return arg, None

        self._check_content_type(info, wire.UPLOAD_CONTENT_TYPES, required=False)
        if reader.length is not None and reader.length > MAX_PAYLOAD:
            self._refuse_oversized(info)
        return arg, self._spool(info, reader)

    def _check_content_type(
        self, info: wire.RouteInfo, accepted: tuple[str, ...], *, required: bool
    ) -> None:
        value = self.headers.get("Content-Type")
        if value is None and not required:
            return
        if value is None or value.strip().lower() not in accepted:
            expected = ", ".join(f'"{a}"' for a in accepted)
            raise wire.ArgError(
                f'Bad HTTP "Content-Type" header: "{value or ""}".  Expecting one of {expected}.'
            )

    def _refuse_oversized(self, info: wire.RouteInfo) -> None:
        """Answer a body over the cap without reading it, then hang up."""
        if info.error_has("payload_too_large"):
            error = info.route.error_type.definition.payload_too_large
            response = Response(
                409, wire.route_error_body(info, error).encode(), "application/json"
            )
        else:
            response = Response.text(
                400, wire.error_text(info, f"request body is larger than {MAX_PAYLOAD} bytes")
            )
        self._respond(response, close=True, count_out=True)
        self._linger()
        raise _Answered

    def _spool(self, info: wire.RouteInfo, reader: BodyReader) -> Body:
        """Stream the body to a file in the data dir while computing its content hash."""
        fd, name = tempfile.mkstemp(dir=str(self.emulator.spool_dir), prefix="body-")
        path = Path(name)
        try:
            with os.fdopen(fd, "wb") as out:  # buffered: write() always writes it all
                big = PIPELINE_THRESHOLD is not None and (
                    reader.length is None or reader.length > PIPELINE_THRESHOLD
                )
                content_hash = (spool_pipelined if big else spool_inline)(reader, out)
        except Oversized:
            path.unlink()
            self.emulator.stats.add_in(reader.consumed)
            self._refuse_oversized(info)
        except BaseException:
            with contextlib.suppress(OSError):
                path.unlink()
            self.emulator.stats.add_in(reader.consumed)
            raise
        self.emulator.stats.add_in(reader.consumed)
        return Body(path=path, size=reader.consumed, content_hash=content_hash)

    def _call(self, info: wire.RouteInfo, call: Call, fault: Optional[Fault]) -> None:
        handler = HANDLERS.get(info.key)
        if handler is None:
            self._text_error(info, "This route is not supported by dropbox-emulator.")
            return
        try:
            result = handler(call)
        except RouteError as exc:
            error = exc.error
            body = self._encode(lambda: wire.route_error_body(info, error))
            if body is not None:
                self._respond(Response(409, body.encode(), "application/json"), count_out=True)
            return
        except BadInput as exc:
            self._text_error(info, str(exc))
            return
        except PathRootFailure as exc:
            root_error = exc.error
            body = self._encode(lambda: wire.path_root_error_body(root_error))
            if body is not None:
                self._respond(Response(422, body.encode(), "application/json"), count_out=True)
            return
        except TooManyWriteOperations as exc:
            self._rate_limited("too_many_write_operations", exc.retry_after)
            return
        except (ClientGone, Drop):
            raise
        except Exception:
            traceback.print_exc(file=sys.stderr)
            self._respond(Response.text(500, "Internal emulator error"), count_out=True)
            return

        if info.style == "download":
            if not isinstance(result, DownloadResult):
                sys.stderr.write(f"dropbox-emulator: {info.key} did not return a DownloadResult\n")
                self._respond(Response.text(500, "Internal emulator error"), count_out=True)
                return
            header = self._encode(
                lambda: wire.header_json(wire.encode_result(info, result.metadata))
            )
            if header is not None:
                self._serve_blob(result.blob, result.size, {"Dropbox-API-Result": header}, fault)
            return
        body = self._encode(lambda: wire.encode_result(info, result))
        if body is not None:
            self._respond(Response(200, body.encode(), "application/json"), count_out=True)

    def _encode(self, encode: Any) -> Optional[str]:
        """Run an encoder; a handler that returned something off-contract is a 500, not a crash."""
        try:
            return encode()
        except Exception:
            traceback.print_exc(file=sys.stderr)
            self._respond(Response.text(500, "Internal emulator error (encoding)"), count_out=True)
            return None

    # -- faults --------------------------------------------------------------------------------

    def _fail(self, info: wire.RouteInfo, fault: Fault, reader: BodyReader) -> None:
        if fault.drop_connection:
            if fault.after_bytes and info.style != "download":
                with contextlib.suppress(ClientGone):
                    while reader.consumed < fault.after_bytes and not reader.done:
                        if not reader.read(min(READ_BLOCK, fault.after_bytes - reader.consumed)):
                            break
                self.emulator.stats.add_in(reader.consumed)
            raise Drop
        # Read the body first so the client sees our answer rather than a reset connection.
        with contextlib.suppress(ClientGone):
            reader.discard()
        self.emulator.stats.add_in(reader.consumed)
        if not reader.done:
            self.close_connection = True
        if fault.status == 429:
            self._rate_limited(fault.reason, fault.retry_after)
        else:
            self._respond(
                Response.text(fault.status, f"Injected fault: HTTP {fault.status}"), count_out=True
            )

    # -- downloads -----------------------------------------------------------------------------

    def _serve_blob(
        self, blob: Path, size: int, headers: dict[str, str], fault: Optional[Fault]
    ) -> None:
        status = 200
        start, end = 0, size  # [start, end)
        wanted = self.headers.get("Range")
        if wanted is not None:
            span = parse_range(wanted, size)
            if span == "unsatisfiable":
                self._respond(
                    Response.text(
                        416,
                        "Requested range not satisfiable",
                        **{"Content-Range": f"bytes */{size}"},
                    ),
                    count_out=True,
                )
                return
            if span is not None:
                start, end = span
                status = 206
                headers["Content-Range"] = f"bytes {start}-{end - 1}/{size}"
        headers["Accept-Ranges"] = "bytes"
        length = end - start
        cut_after = fault.after_bytes if fault is not None and fault.drop_connection else None
        flip_at = (
            start + length // 2 if fault is not None and fault.corrupt_body and length else None
        )
        self._respond(
            Response(status, b"", "application/octet-stream", headers), content_length=length
        )
        if self.command == "HEAD":
            return
        sent = 0
        buffer = bytearray(min(SEND_BLOCK, max(length, 1)))
        view = memoryview(buffer)
        with blob.open("rb", buffering=0) as source:
            source.seek(start)
            while sent < length:
                want = min(len(buffer), length - sent)
                if cut_after is not None:
                    want = min(want, cut_after - sent)
                    if want <= 0:
                        self.emulator.stats.add_out(sent)
                        raise Drop
                got = source.readinto(view[:want])
                if not got:
                    break  # the blob shrank under us; the client sees a short body
                if flip_at is not None and start + sent <= flip_at < start + sent + got:
                    buffer[flip_at - start - sent] ^= 0xFF
                self.wfile.write(view[:got])
                sent += got
        self.emulator.stats.add_out(sent)
        if sent < length:
            self.close_connection = True
        if cut_after is not None:
            raise Drop

    def _temporary_link(self, path: str, reader: BodyReader) -> None:
        self._finish_body(reader)
        link_id = path[len(LINK_PREFIX) :].split("/", 1)[0]
        found = self.emulator.tokens.link(link_id)
        if found is None:
            self._respond(Response.text(404, "Unknown link"))
            return
        if found is False:
            self._respond(Response.text(410, "This link has expired"))
            return
        blob, name = found
        try:
            size = blob.stat().st_size
        except OSError:
            self._respond(Response.text(410, "This file is no longer available"))
            return
        disposition = f"attachment; filename*=UTF-8''{urllib.parse.quote(name)}"
        self._serve_blob(blob, size, {"Content-Disposition": disposition}, None)


class _Answered(Exception):
    """The response was already sent (e.g. payload_too_large)."""


def ready_info(emulator: Emulator) -> dict[str, Any]:
    """The ready line: where the emulator is and the env the SDK needs to reach it."""
    netloc = emulator.netloc
    env = {
        "DROPBOX_API_HOST": netloc,
        "DROPBOX_API_CONTENT_HOST": netloc,
        "DROPBOX_API_NOTIFY_HOST": netloc,
        "DROPBOX_WEB_HOST": netloc,
        "REQUESTS_CA_BUNDLE": str(emulator.tls.ca_bundle),
        "DROPBOX_APP_KEY": emulator.oauth.app_keys[0],
    }
    return {
        "url": emulator.url,
        "control_url": f"{emulator.url}/_emulator",
        "ca_bundle": str(emulator.tls.ca_bundle),
        "env": env,
    }


def ready_line(emulator: Emulator) -> str:
    return json.dumps(ready_info(emulator))


def serve_in_thread(emulator: Emulator) -> threading.Thread:
    thread = threading.Thread(target=emulator.serve_forever, name="dropbox-emulator", daemon=True)
    thread.start()
    return thread
