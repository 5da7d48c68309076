"""One API call (`/2/<route>`), from the request to the handler and back.

In order: route lookup, stats, method, faults, auth (before anything is read: Dropbox answers
bad tokens without taking the upload), the per-token rate limit, `Dropbox-API-Path-Root`, the
argument (strictly decoded) and the body (spooled to disk while hashed), the handler, and the
answer encoded exactly as Dropbox does: result, 400 text, 409 route error, 422 path root error,
429 rate limit, or the file of a download.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sys
import tempfile
import threading
import time
import traceback
import urllib.parse
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Optional

from dropbox import common

from dropbox_emulator.control.faults import Fault
from dropbox_emulator.control.knobs import current_caller
from dropbox_emulator.exchange import Response
from dropbox_emulator.handlers import catalogue
from dropbox_emulator.handlers.catalogue import RouteInfo
from dropbox_emulator.handlers.contract import (
    HANDLERS,
    MAX_PAYLOAD,
    BadInput,
    Body,
    Call,
    DownloadResult,
    PathRootFailure,
    RouteError,
    TooManyWriteOperations,
)
from dropbox_emulator.http import downloads, wire
from dropbox_emulator.http.access import Caller, authenticate
from dropbox_emulator.http.bodies import (
    MAX_SMALL_BODY,
    READ_BLOCK,
    BodyReader,
    ClientGone,
    Drop,
    Oversized,
    spool_inline,
    spool_pipelined,
)
from dropbox_emulator.state.account import ACCOUNT_ID
from dropbox_emulator.state.blobs import INLINE_MAX
from dropbox_emulator.state.blobs import content_hash as hash_of
from dropbox_emulator.state.store import Store

if TYPE_CHECKING:
    from dropbox_emulator.http.connection import Connection
    from dropbox_emulator.runtime import Runtime

# Bodies above this are hashed and written by a helper thread while the socket is read. That
# only pays with cores to spare (the client usually runs on the same machine): on a 2-CPU box
# the hand-offs cost more than the overlap gains (measured), so it stays off there.
PIPELINE_THRESHOLD = 4 * 1024 * 1024 if (os.cpu_count() or 1) >= 4 else None


class RouteServices:
    """`handlers.contract.Services` on the runtime's parts."""

    def __init__(self, runtime: Runtime):
        self._runtime = runtime

    @property
    def store(self) -> Store:
        return self._runtime.store

    def commit(self, namespace_id: str) -> AbstractContextManager[None]:
        return self._runtime.locks.commit(namespace_id)

    def temporary_link(self, blob: Path, name: str) -> str:
        return downloads.new_link(self._runtime, blob, name)

    def revoke_token(self, access_token: str) -> None:
        self._runtime.tokens.revoke_access(access_token)

    def entry_failure(self, call: Call, tags: tuple[str, ...]) -> Optional[str]:
        return self._runtime.faults.take_entry(call.url_name, call.route, tags=tags)

    def entries_refused(self, count: int) -> None:
        self._runtime.stats.count("entry_contention", count)

    def route_form_contention(self, batch: bool) -> bool:
        config, realism = self._runtime.config, self._runtime.realism
        if batch:
            return not realism.happens(config.batch_contention_429_share)
        return realism.happens(config.contention_409_share)

    def run_job(self, kind: str, validator: Any, work: Callable[[], object]) -> str:
        jobs = self._runtime.store.jobs
        delay = self._runtime.realism.job_delay_s()
        if delay <= 0:
            return jobs.add(kind, wire.json_encode(validator, work()))
        job_id = jobs.add(kind, "")
        caller = getattr(current_caller, "digest", None)

        def run_later() -> None:
            current_caller.digest = caller
            time.sleep(delay)
            try:
                jobs.finish(job_id, wire.json_encode(validator, work()))
            except Exception:
                traceback.print_exc(file=sys.stderr)
                jobs.forget(job_id)  # its /check answers invalid_async_job_id, never hangs

        threading.Thread(target=run_later, name=f"job-{kind}", daemon=True).start()
        return job_id


class _Answered(Exception):
    """The response was already sent (e.g. payload_too_large)."""


class ApiCall:
    def __init__(self, conn: Connection, url: urllib.parse.SplitResult, reader: BodyReader):
        self.conn = conn
        self.runtime = conn.runtime
        self.url = url
        self.reader = reader
        self.query = urllib.parse.parse_qs(url.query, keep_blank_values=True)
        # This request's identity for early-retry counting (see fingerprint()); set once read.
        self.fingerprint: Optional[str] = None
        # The token's cooldown this request arrived in, when it is served all the same
        # (retry_after not enforced): counted once its argument is read.
        self._cooling: Optional[tuple[str, ...]] = None
        self._raw_arg: Optional[bytes] = None  # an RPC's body, for the fingerprint

    def run(self) -> None:
        self.conn.latency()
        try:
            info = self._route()
            fault = self._take_fault(info)
            caller = self._caller(info)
            path_root, arg, body = self._request(info)
        except _Answered:
            return
        token = caller.token
        try:
            call = Call(
                route=info.key,
                url_name=info.url_name,
                arg=arg,
                account_id=token.account_id if token else ACCOUNT_ID,
                access_token=caller.access_token,
                path_root=path_root,
                body=body,
            )
            current_caller.digest = token.digest if token is not None else None
            current_caller.fingerprint = self.fingerprint
            self._call(info, call, fault)
        finally:
            current_caller.digest = None
            current_caller.fingerprint = None
            if body is not None and body.path is not None and not body.taken:
                with contextlib.suppress(OSError):
                    body.path.unlink()

    # -- before the handler: each step answers and raises _Answered, or returns ---------------

    def _route(self) -> RouteInfo:
        conn = self.conn
        info = catalogue.lookup(self.url.path)
        if info is None:
            conn.finish_body(self.reader)
            name = self.url.path[3:]
            self.runtime.stats.request(name)  # unknown routes count too
            conn.respond(Response.text(400, f'Unknown API function: "{name}"'), count_out=True)
            raise _Answered
        self.runtime.stats.request(info.url_name)
        if conn.command != "POST" and not (conn.command == "GET" and info.style == "download"):
            conn.finish_body(self.reader)
            self._text_error(info, f'Only POST requests are supported (got "{conn.command}").')
            raise _Answered
        return info

    def _take_fault(self, info: RouteInfo) -> Optional[Fault]:
        """An armed fault for this call: answered here, or returned when it acts while serving
        (corrupt_body, drop_connection after some bytes of a download, and a lost answer: the
        call runs, then the connection refuses to send whatever it answers)."""
        download = info.style == "download"
        fault = self.runtime.faults.take(
            info.url_name, info.key, download=download, after_processing=True
        )
        if fault is None:
            return None
        if fault.loses_answer:
            self.conn.lose_answer()
            return None
        if fault.corrupt_body or (fault.drop_connection and fault.after_bytes and download):
            return fault
        self._fail(info, fault)
        raise _Answered

    def _caller(self, info: RouteInfo) -> Caller:
        """Auth before anything is read (Dropbox answers bad tokens without taking the upload),
        then the per-token rate limit."""
        header = self.conn.headers.get("Authorization")
        if header is None and self.query.get("authorization"):
            header = self.query["authorization"][0]
        caller = authenticate(self.runtime, info, header)
        if isinstance(caller, Response):
            self.conn.finish_body(self.reader)
            self.conn.respond(caller, count_out=True)
            raise _Answered
        if caller.token is None:
            return caller
        digest = caller.token.digest
        runtime = self.runtime
        key = (digest, "requests")
        early = runtime.cooldowns.remaining(key)
        if early is not None and runtime.config.enforce_retry_after:
            # Before the end of the token's wait: refused again for the rest of it, whatever it
            # is (as Dropbox does); an early retry only if it is a refused request sent again
            # (profile.Cooldowns says why).
            self._refused_fingerprint(info)
            if runtime.cooldowns.early(key, self.fingerprint):
                runtime.stats.early_retry(info.url_name)
            self.conn.finish_body(self.reader)
            self._rate_limited("too_many_requests", early, digest)
            raise _Answered
        self._cooling = key if early is not None else None
        wait = runtime.limiter.allow(digest)
        if wait:
            self._refused_fingerprint(info)
            self.conn.finish_body(self.reader)
            self._rate_limited("too_many_requests", None, digest, at_least=wait)
            raise _Answered
        return caller

    def _refused_fingerprint(self, info: RouteInfo) -> None:
        """The fingerprint of a request about to be refused (an RPC's small body is read for
        it; the answer does not need it)."""
        raw = None
        length = self.reader.length
        if info.style == "rpc" and length is not None and length <= MAX_SMALL_BODY:
            with contextlib.suppress(ClientGone):
                raw = self.conn.read_small(self.reader)
            self.runtime.stats.add_in(len(raw or b""))
        self.fingerprint = self._fingerprint(info, raw)

    def _fingerprint(self, info: RouteInfo, raw: Optional[bytes]) -> str:
        """Route, argument (an RPC's body; a content route's Dropbox-API-Arg, which carries
        the upload's content_hash when the client sends one) and size: the same request sent
        again has the same fingerprint; two different requests of a client almost never do."""
        digest = hashlib.sha256(info.url_name.encode())
        if info.style == "rpc":
            digest.update(b"\0" + (raw or b""))
        else:
            arg = self.conn.headers.get("Dropbox-API-Arg") or "".join(self.query.get("arg", []))
            digest.update(b"\0" + arg.encode("utf-8", "replace"))
        digest.update(b"\0" + str(self.reader.length).encode())
        return digest.hexdigest()

    def _request(self, info: RouteInfo) -> tuple[Optional[common.PathRoot], Any, Optional[Body]]:
        """Path root, argument and body; a bad one is a 400 text."""
        try:
            path_root = None
            raw_root = self.conn.headers.get("Dropbox-API-Path-Root")
            if raw_root is not None:
                path_root = wire.decode_path_root(raw_root)
            arg, body = self._arg_and_body(info)
        except wire.ArgError as exc:
            self.conn.finish_body(self.reader)
            self._text_error(info, str(exc))
            raise _Answered from None
        self.fingerprint = self._fingerprint(info, self._raw_arg)
        if self._cooling is not None and self.runtime.cooldowns.early(
            self._cooling, self.fingerprint
        ):
            self.runtime.stats.early_retry(info.url_name)
        return path_root, arg, body

    # -- answers -------------------------------------------------------------------------------

    def _text_error(self, info: RouteInfo, message: str) -> None:
        self.conn.respond(Response.text(400, wire.error_text(info, message)), count_out=True)

    def _rate_limited(
        self,
        reason: str,
        seconds: Optional[float],
        digest: Optional[str] = None,
        *,
        at_least: float = 0.0,
        retry_after: Optional[int] = None,
    ) -> None:
        """A 429. `seconds` is the (scaled) wait to enforce, or None to draw one from the
        realism range for `reason` (at least `at_least` real seconds); `retry_after` is the
        whole-second wire value when the caller already has one. A share of them
        (`plain_text_429_share`) comes as text/plain, as Dropbox's front ends sometimes
        answer: the SDK then raises RateLimitError(error=None, backoff=int(Retry-After))."""
        runtime = self.runtime
        if seconds is None:
            bounds = runtime.config.too_many_requests_retry_after_s
            drawn = runtime.realism.wait(bounds, at_least)
            seconds, retry_after = drawn.seconds, drawn.retry_after
        if retry_after is None:
            retry_after = max(1, int(-(-seconds // 1)))
        runtime.stats.count("rate_limited")
        if digest is not None:
            kind = "requests" if reason == "too_many_requests" else "write"
            runtime.cooldowns.start((digest, kind), seconds, self.fingerprint)
        headers = {"Retry-After": str(retry_after)}
        if runtime.realism.happens(runtime.config.plain_text_429_share):
            self.conn.respond(Response.text(429, "Too Many Requests", **headers), count_out=True)
            return
        body = wire.rate_limit_body(reason, retry_after)
        self.conn.respond(Response(429, body.encode(), "application/json", headers), count_out=True)

    def _json(self, status: int, encode: Callable[[], str]) -> None:
        """Answer `status` with the JSON `encode` makes; a handler that returned something
        off-contract is a 500, not a crash."""
        body = self._encode(encode)
        if body is not None:
            self.conn.respond(Response(status, body.encode(), "application/json"), count_out=True)

    def _encode(self, encode: Callable[[], str]) -> Optional[str]:
        try:
            return encode()
        except Exception:
            traceback.print_exc(file=sys.stderr)
            self.conn.respond(
                Response.text(500, "Internal emulator error (encoding)"), count_out=True
            )
            return None

    def _fail(self, info: RouteInfo, fault: Fault) -> None:
        """Answer with an injected fault (or cut the connection) instead of calling the route."""
        conn, reader, stats = self.conn, self.reader, self.runtime.stats
        if fault.drop_connection:
            if fault.after_bytes and info.style != "download":
                with contextlib.suppress(ClientGone):
                    while reader.consumed < fault.after_bytes and not reader.done:
                        if not reader.read(min(READ_BLOCK, fault.after_bytes - reader.consumed)):
                            break
                stats.add_in(reader.consumed)
            raise Drop
        # Read the body first so the client sees our answer rather than a reset connection.
        with contextlib.suppress(ClientGone):
            reader.discard()
        stats.add_in(reader.consumed)
        if not reader.done:
            conn.close_connection = True
        if fault.unknown_route:  # the answer _route gives a route it does not know
            unknown = Response.text(400, f'Unknown API function: "{info.url_name}"')
            conn.respond(unknown, count_out=True)
        elif fault.status == 429:
            # Injected waits are exactly what the test asked for: never scaled, never plain.
            body = wire.rate_limit_body(fault.reason, fault.retry_after)
            conn.respond(
                Response(
                    429, body.encode(), "application/json", {"Retry-After": str(fault.retry_after)}
                ),
                count_out=True,
            )
        else:
            conn.respond(
                Response.text(fault.status, f"Injected fault: HTTP {fault.status}"), count_out=True
            )

    # -- the request ---------------------------------------------------------------------------

    def _arg_and_body(self, info: RouteInfo) -> tuple[Any, Optional[Body]]:
        """The decoded argument (and, for uploads, the spooled body); raises wire.ArgError."""
        conn, reader = self.conn, self.reader
        if info.style == "rpc":
            self._check_content_type(wire.RPC_CONTENT_TYPES, required=True)
            if reader.length is not None and reader.length > MAX_SMALL_BODY:
                self._refuse_oversized(info)
            raw = conn.read_small(reader)
            self._raw_arg = raw
            if raw is None:
                self._refuse_oversized(info)
            self.runtime.stats.add_in(len(raw or b""))
            return wire.decode_arg(info, raw, source="body"), None

        raw_arg = conn.headers.get("Dropbox-API-Arg")
        if raw_arg is None and self.query.get("arg"):
            raw_arg = self.query["arg"][0]
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
            conn.finish_body(reader)
            return arg, None

        self._check_content_type(wire.UPLOAD_CONTENT_TYPES, required=False)
        if reader.length is not None and reader.length > MAX_PAYLOAD:
            self._refuse_oversized(info)
        return arg, self._spool(info)

    def _check_content_type(self, accepted: tuple[str, ...], *, required: bool) -> None:
        value = self.conn.headers.get("Content-Type")
        if value is None and not required:
            return
        if value is None or value.strip().lower() not in accepted:
            expected = ", ".join(f'"{a}"' for a in accepted)
            raise wire.ArgError(
                f'Bad HTTP "Content-Type" header: "{value or ""}".  Expecting one of {expected}.'
            )

    def _refuse_oversized(self, info: RouteInfo) -> None:
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
        self.conn.respond(response, close=True, count_out=True)
        self.conn.linger()
        raise _Answered

    def _spool(self, info: RouteInfo) -> Body:
        """Stream the body to a file in the data dir while computing its content hash; a
        small body of known length is read into memory instead (no file per small upload)."""
        reader, stats = self.reader, self.runtime.stats
        if reader.length is not None and reader.length <= INLINE_MAX:
            try:
                data = reader.read(reader.length) if reader.length else b""
            finally:
                stats.add_in(reader.consumed)
            if len(data) < reader.length:
                raise ClientGone("request body ended early")
            return Body(path=None, size=len(data), content_hash=hash_of(data), data=data)
        fd, name = tempfile.mkstemp(dir=str(self.conn.server.spool_dir), prefix="body-")
        path = Path(name)
        try:
            with os.fdopen(fd, "wb") as out:  # buffered: write() always writes it all
                big = PIPELINE_THRESHOLD is not None and (
                    reader.length is None or reader.length > PIPELINE_THRESHOLD
                )
                content_hash = (spool_pipelined if big else spool_inline)(reader, out)
        except Oversized:
            path.unlink()
            stats.add_in(reader.consumed)
            self._refuse_oversized(info)
        except BaseException:
            with contextlib.suppress(OSError):
                path.unlink()
            stats.add_in(reader.consumed)
            raise
        stats.add_in(reader.consumed)
        return Body(path=path, size=reader.consumed, content_hash=content_hash)

    # -- the handler ---------------------------------------------------------------------------

    def _call(self, info: RouteInfo, call: Call, fault: Optional[Fault]) -> None:
        handler = HANDLERS.get(info.key)
        if handler is None:
            self._text_error(info, "This route is not supported by dropbox-emulator.")
            return
        try:
            result = handler(call, self.conn.server.services)
        except RouteError as exc:
            route_error = exc.error
            self._json(409, lambda: wire.route_error_body(info, route_error))
            return
        except BadInput as exc:
            self._text_error(info, str(exc))
            return
        except PathRootFailure as exc:
            root_error = exc.error
            self._json(422, lambda: wire.path_root_error_body(root_error))
            return
        except TooManyWriteOperations as exc:
            self._rate_limited(
                "too_many_write_operations",
                exc.seconds,
                current_caller.digest,
                retry_after=exc.retry_after,
            )
            return
        except (ClientGone, Drop):
            raise
        except Exception:
            traceback.print_exc(file=sys.stderr)
            self.conn.respond(Response.text(500, "Internal emulator error"), count_out=True)
            return

        if info.style != "download":
            self._json(200, lambda: wire.encode_result(info, result))
            return
        if not isinstance(result, DownloadResult):
            sys.stderr.write(f"dropbox-emulator: {info.key} did not return a DownloadResult\n")
            self.conn.respond(Response.text(500, "Internal emulator error"), count_out=True)
            return
        try:
            header = self._encode(
                lambda: wire.header_json(wire.encode_result(info, result.metadata))
            )
            if header is not None:
                downloads.serve_result(self.conn, result, header, fault)
        finally:
            if result.temporary and isinstance(result.blob, Path):
                with contextlib.suppress(OSError):
                    result.blob.unlink()
