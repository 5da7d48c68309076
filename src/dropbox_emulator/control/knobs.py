"""The realism knobs that make the emulator slow where Dropbox is slow, and the counters.

* `WriteLocks`: Dropbox serialises commits per namespace; a commit holds the namespace's lock for
  `commit_ms` (sometimes `slow_commit_ms` more), and one that cannot get it within
  `lock_wait_ms`, or that exceeds the namespace's commit budget, loses with
  `too_many_write_operations` (which form the client sees is the handler's choice: a batch
  fails entries, a single commit answers 409 or 429 — see `control/profile.py`).
* `RateLimiter`: an optional per-token request budget (429 `too_many_requests`).
* `Stats`: what GET /_emulator/stats reports.

Every delay and wait here goes through `profile.Realism` (time scale, seeded draws).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Optional

from dropbox_emulator.config import EmulatorConfig
from dropbox_emulator.control.profile import Cooldowns, Realism
from dropbox_emulator.handlers.contract import TooManyWriteOperations

RETRY_AFTER_S = 1  # what Dropbox usually asks for on lock contention (the default range)

# The access token (`digest`) and the request's fingerprint (`fingerprint`, None on a job's
# thread) of the API call this thread serves (set by http.calls), so commits can tell whether
# their caller was told to wait, and whether this is a refused commit coming back too soon.
current_caller = threading.local()


def caller_digest() -> str:
    return getattr(current_caller, "digest", None) or "-"


def caller_fingerprint() -> Optional[str]:
    return getattr(current_caller, "fingerprint", None)


class Stats:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.in_flight = 0  # API calls being served now (outside reset: calls span it)
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self.requests: dict[str, int] = {}
            self.commits = 0
            self.contention = 0  # commits refused with too_many_write_operations
            self.rate_limited = 0  # 429 answers of any kind
            # refused requests sent again before the wait they were told was over
            # (profile.Cooldowns says why only those)
            self.early_retries = 0
            self.early_retry_routes: dict[str, int] = {}  # which routes they were (diagnosis)
            # batch entries that lost the namespace: failures inside a successful result
            self.entry_contention = 0
            self.bytes_in = 0
            self.bytes_out = 0
            self.most_in_flight = self.in_flight

    @contextmanager
    def serving(self) -> Iterator[None]:
        """Around one API call, from its request line to its answer: counts calls at once."""
        with self._lock:
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            yield
        finally:
            with self._lock:
                self.in_flight -= 1

    def concurrency(self, restart: bool = False) -> dict[str, int]:
        """What GET /_emulator/concurrency reports; `restart` starts a new high-water mark."""
        with self._lock:
            view = {"in_flight": self.in_flight, "most_in_flight": self.most_in_flight}
            if restart:
                self.most_in_flight = self.in_flight
            return view

    def request(self, name: str) -> None:
        with self._lock:
            self.requests[name] = self.requests.get(name, 0) + 1

    def commit(self) -> None:
        with self._lock:
            self.commits += 1

    def count(self, name: str, n: int = 1) -> None:
        """+n on one of the counters (contention, entry_contention, rate_limited,
        early_retries)."""
        with self._lock:
            setattr(self, name, getattr(self, name) + n)

    def early_retry(self, route: str) -> None:
        """One early retry (see profile.Cooldowns), on `route`."""
        with self._lock:
            self.early_retries += 1
            self.early_retry_routes[route] = self.early_retry_routes.get(route, 0) + 1

    def early_routes(self) -> dict[str, int]:
        with self._lock:
            return dict(self.early_retry_routes)

    def realism(self) -> dict[str, int]:
        """What GET /_emulator/realism counts (the stats keep their four keys)."""
        with self._lock:
            return {
                "contention": self.contention,
                "entry_contention": self.entry_contention,
                "rate_limited": self.rate_limited,
                "early_retries": self.early_retries,
            }

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
    def __init__(
        self, config: EmulatorConfig, stats: Stats, realism: Realism, cooldowns: Cooldowns
    ):
        self._config = config
        self._stats = stats
        self._realism = realism
        self._cooldowns = cooldowns
        self._guard = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}
        self._budgets: dict[str, tuple[float, float]] = {}  # ns -> (tokens, last refill)

    def _lock_for(self, namespace_id: str) -> threading.Lock:
        with self._guard:
            lock = self._locks.get(namespace_id)
            if lock is None:
                lock = self._locks[namespace_id] = threading.Lock()
            return lock

    def reset(self) -> None:
        with self._guard:
            self._budgets.clear()

    def _within_budget(self, namespace_id: str) -> bool:
        """One commit from the namespace's budget (`namespace_commits_per_s`), if it has one."""
        rate = self._config.namespace_commits_per_s
        if not rate or rate <= 0:
            return True
        capacity = max(rate, 1.0)
        now = time.monotonic()
        with self._guard:
            tokens, last = self._budgets.get(namespace_id, (capacity, now))
            tokens = min(capacity, tokens + (now - last) * rate)
            if tokens >= 1.0:
                self._budgets[namespace_id] = (tokens - 1.0, now)
                return True
            self._budgets[namespace_id] = (tokens, now)
            return False

    def _busy(self) -> TooManyWriteOperations:
        self._stats.count("contention")
        wait = self._realism.wait(self._config.contention_retry_after_s)
        return TooManyWriteOperations(wait.retry_after, wait.seconds)

    @contextmanager
    def commit(self, namespace_id: str) -> Iterator[None]:
        """Hold `namespace_id`'s write lock for the commit and at least `commit_ms`."""
        config, realism = self._config, self._realism
        key = (caller_digest(), "write")
        if self._cooldowns.remaining(key) is not None:
            # The token was told to wait after a too_many_write_operations: still busy, whoever
            # asks (a commit already on its way too); early if it is the refused commit again.
            if self._cooldowns.early(key, caller_fingerprint()):
                self._stats.early_retry("(commit)")
            if config.enforce_retry_after:
                raise self._busy()
        if not self._within_budget(str(namespace_id)):
            raise self._busy()
        lock = self._lock_for(str(namespace_id))
        if not lock.acquire(timeout=realism.delay_s(config.lock_wait_ms)):
            raise self._busy()
        try:
            started = time.monotonic()
            yield
            self._stats.commit()
            hold = realism.delay_s(config.commit_ms)
            if realism.happens(config.slow_commit_share):
                hold += realism.delay_s(config.slow_commit_ms)
            remaining = hold - (time.monotonic() - started)
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
