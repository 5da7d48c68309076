"""A tiny HTTPS CONNECT proxy (stdlib only) that sends every tunnel to one local port.

Clients that hard-code Dropbox's hosts (rclone: api.dropboxapi.com, content.dropboxapi.com,
www.dropbox.com) reach the emulator through it: whatever host a `CONNECT` names, the tunnel opens
to 127.0.0.1:<upstream port>. TLS passes through untouched, so the client sees the emulator's
certificate (rclone then needs `--no-check-certificate`). It listens on 127.0.0.1 only, and
everything is bounded: its lifetime, the number of tunnels, the size of a request head.
"""

from __future__ import annotations

import selectors
import socket
import threading
import time
from collections import Counter
from typing import Optional

MAX_HEAD_BYTES = 16 * 1024
CHUNK = 64 * 1024


class ConnectProxy:
    def __init__(self, upstream_port: int, lifetime_s: float = 60.0, max_tunnels: int = 200):
        self.upstream_port = upstream_port
        self.lifetime_s = lifetime_s
        self.max_tunnels = max_tunnels
        self.hosts: Counter[str] = Counter()  # host:port of each CONNECT, as the client named it
        self.refused = 0  # requests that were not a CONNECT, or beyond max_tunnels
        self._lock = threading.Lock()
        self._deadline = 0.0
        self._listener: Optional[socket.socket] = None
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()

    @property
    def port(self) -> int:
        assert self._listener is not None, "start() first"
        return int(self._listener.getsockname()[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ConnectProxy:
        self._deadline = time.monotonic() + self.lifetime_s
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        listener.settimeout(0.2)  # lets the accept loop see stop() and the deadline
        self._listener = listener
        self._spawn(self._accept_loop)
        return self

    def stop(self) -> None:
        self._stopping.set()
        for thread in list(self._threads):
            thread.join(5)
        if self._listener is not None:
            self._listener.close()

    def __enter__(self) -> ConnectProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _spawn(self, target: object, *args: object) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)  # type: ignore[arg-type]
        with self._lock:
            self._threads.append(thread)
        thread.start()

    def _alive(self) -> bool:
        return not self._stopping.is_set() and time.monotonic() < self._deadline

    def _accept_loop(self) -> None:
        assert self._listener is not None
        tunnels = 0
        while self._alive():
            try:
                client, _ = self._listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            tunnels += 1
            if tunnels > self.max_tunnels:
                self._refuse(client, b"503 Too Many Tunnels")
                continue
            self._spawn(self._tunnel, client)

    def _refuse(self, client: socket.socket, status: bytes) -> None:
        with self._lock:
            self.refused += 1
        try:
            client.sendall(b"HTTP/1.1 " + status + b"\r\nContent-Length: 0\r\n\r\n")
        finally:
            client.close()

    def _read_head(self, client: socket.socket) -> Optional[bytes]:
        client.settimeout(10)
        head = b""
        while b"\r\n\r\n" not in head:
            piece = client.recv(4096)
            if not piece or len(head) > MAX_HEAD_BYTES:
                return None
            head += piece
        return head

    def _tunnel(self, client: socket.socket) -> None:
        try:
            head = self._read_head(client)
        except OSError:
            client.close()
            return
        if head is None:
            client.close()
            return
        request_line = head.split(b"\r\n", 1)[0].decode("latin-1").split()
        if len(request_line) != 3 or request_line[0].upper() != "CONNECT":
            self._refuse(client, b"405 Method Not Allowed")
            return
        with self._lock:
            self.hosts[request_line[1]] += 1
        try:
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port), timeout=10)
        except OSError:
            self._refuse(client, b"502 Bad Gateway")
            return
        # Bytes the client sent after the head (TLS may start at once) go upstream first.
        extra = head.split(b"\r\n\r\n", 1)[1]
        try:
            client.sendall(b"HTTP/1.1 200 Connection Established\r\n\r\n")
            if extra:
                upstream.sendall(extra)
            self._pump(client, upstream)
        except OSError:
            pass
        finally:
            client.close()
            upstream.close()

    def _pump(self, client: socket.socket, upstream: socket.socket) -> None:
        """Copy bytes both ways until either side closes, or the proxy's time is up."""
        peer = {client: upstream, upstream: client}
        with selectors.DefaultSelector() as selector:
            for sock in peer:
                sock.setblocking(False)
                selector.register(sock, selectors.EVENT_READ)
            while self._alive():
                for key, _ in selector.select(timeout=0.5):
                    ready = key.fileobj
                    assert isinstance(ready, socket.socket)
                    try:
                        data = ready.recv(CHUNK)
                    except BlockingIOError:
                        continue
                    if not data:
                        return
                    target = peer[ready]
                    target.setblocking(True)
                    target.settimeout(30)
                    target.sendall(data)
                    target.setblocking(False)
