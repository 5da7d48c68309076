"""The realism knobs that make the emulator slow where Dropbox is slow, and the counters.

* `WriteLocks`: Dropbox serialises commits per namespace; a commit holds the namespace's lock for
  `commit_ms`, and one that cannot get it within `lock_wait_ms` loses with 429
  `too_many_write_operations`.
* `RateLimiter`: an optional per-token request budget (429 `too_many_requests`).
* `Stats`: what GET /_emulator/stats reports.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from dropbox_emulator.config import EmulatorConfig
from dropbox_emulator.handlers.contract import TooManyWriteOperations

RETRY_AFTER_S = 1  # what Dropbox usually asks for on lock contention


class Stats:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self.requests: dict[str, int] = {}
            self.commits = 0
            self.bytes_in = 0
            self.bytes_out = 0

    def request(self, name: str) -> None:
        with self._lock:
            self.requests[name] = self.requests.get(name, 0) + 1

    def commit(self) -> None:
        with self._lock:
            self.commits += 1

    def add_in(self, n: int) -> None:
        if n:
            with self._lock:
                self.bytes_in += n

    def add_out(self, n: int) -> None:
        if n:
            with self._lock:
                self.bytes_out += n

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "requests": dict(sorted(self.requests.items())),
                "commits": self.commits,
                "bytes_in": self.bytes_in,
                "bytes_out": self.bytes_out,
            }


class WriteLocks:
    def __init__(self, config: EmulatorConfig, stats: Stats):
        self._config = config
        self._stats = stats
        self._guard = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}

    def _lock_for(self, namespace_id: str) -> threading.Lock:
        with self._guard:
            lock = self._locks.get(namespace_id)
            if lock is None:
                lock = self._locks[namespace_id] = threading.Lock()
            return lock

    @contextmanager
    def commit(self, namespace_id: str) -> Iterator[None]:
        """Hold `namespace_id`'s write lock for the commit and at least `commit_ms`."""
        lock = self._lock_for(str(namespace_id))
        if not lock.acquire(timeout=max(self._config.lock_wait_ms, 0.0) / 1000.0):
            raise TooManyWriteOperations(RETRY_AFTER_S)
        try:
            started = time.monotonic()
            yield
            self._stats.commit()
            remaining = self._config.commit_ms / 1000.0 - (time.monotonic() - started)
            if remaining > 0:
                time.sleep(remaining)
        finally:
            lock.release()


class RateLimiter:
    """A token bucket per access token: `rate_limit_per_s` requests/s, bursts of as many."""

    def __init__(self, config: EmulatorConfig):
        self._config = config
        self._lock = threading.Lock()
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, last refill)

    def reset(self) -> None:
        with self._lock:
            self._buckets.clear()

    def allow(self, key: str) -> int:
        """0 if `key` may make a request now, else the whole seconds until it may."""
        rate = self._config.rate_limit_per_s
        if not rate or rate <= 0:
            return 0
        capacity = max(rate, 1.0)
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(key, (capacity, now))
            tokens = min(capacity, tokens + (now - last) * rate)
            if tokens >= 1.0:
                self._buckets[key] = (tokens - 1.0, now)
                return 0
            self._buckets[key] = (tokens, now)
            return max(1, math.ceil((1.0 - tokens) / rate))
