"""The HTTPS server: one port for the api, content, notify and web "hosts" of Dropbox.

Transport only: TLS, HTTP/1.1 keep-alive and a thread per connection (`connection.Connection`).
Semantics live in the route handlers (`handlers`), the OAuth pages in `oauth.pages`, the control
API in `control.api`; all of them get their parts from the `Runtime`.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import ssl
import sys
import threading
import traceback
from http.server import ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from dropbox_emulator.http.bandwidth import Bandwidth
from dropbox_emulator.http.bodies import ClientGone, Drop
from dropbox_emulator.http.calls import RouteServices
from dropbox_emulator.http.certs import TLSFiles
from dropbox_emulator.http.connection import Connection

if TYPE_CHECKING:
    from dropbox_emulator.runtime import Runtime

HANDSHAKE_TIMEOUT_S = 30


class Server(ThreadingHTTPServer):
    """Listens on `config.host`/`config.port` (the bound port is written back to the config)."""

    daemon_threads = True
    block_on_close = False  # idle keep-alive connections must not delay exit
    allow_reuse_address = True
    request_queue_size = 256

    def __init__(self, runtime: Runtime, tls: TLSFiles, *, verbose: bool = False):
        config = runtime.config
        if ":" in config.host:
            self.address_family = socket.AF_INET6
        self.runtime = runtime
        self.tls = tls
        self.verbose = verbose
        self.closing = False  # set at shutdown: requests still running may then fail quietly
        self.services = RouteServices(runtime)
        self.bandwidth = Bandwidth(config)  # the caps every connection shares
        self.spool_dir = config.data_dir / "spool"
        shutil.rmtree(self.spool_dir, ignore_errors=True)  # leftovers of a killed run
        self.spool_dir.mkdir(parents=True, exist_ok=True)
        self.ssl_context = tls.server_context()
        super().__init__((config.host, config.port), Connection)
        config.port = self.server_address[1]

    def finish_request(self, request: Any, client_address: Any) -> None:
        # The TLS handshake runs here, in the connection's own thread, so a client that connects
        # and never speaks cannot stall the accept loop.
        request.settimeout(HANDSHAKE_TIMEOUT_S)
        try:
            tls = self.ssl_context.wrap_socket(request, server_side=True)
        except (OSError, ssl.SSLError):
            return
        try:
            Connection(tls, client_address, self)
        finally:
            with contextlib.suppress(OSError):
                tls.close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, (OSError, ssl.SSLError, ClientGone, Drop)) or self.closing:
            return  # clients hanging up are normal
        traceback.print_exc(file=sys.stderr)

    def serve_in_thread(self) -> threading.Thread:
        thread = threading.Thread(
            target=self.serve_forever, kwargs={"poll_interval": 0.2}, name="dropbox-emulator"
        )
        thread.daemon = True
        thread.start()
        return thread

    def shutdown(self) -> None:
        self.closing = True
        super().shutdown()

    def server_close(self) -> None:
        super().server_close()
        shutil.rmtree(self.spool_dir, ignore_errors=True)
