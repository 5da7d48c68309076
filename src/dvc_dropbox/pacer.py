"""One pacer per SDK client: every Dropbox call goes through `Pacer.call`.

Dropbox says "slow down" in two ways (dropbox-api.md §3.2): `too_many_requests` (a per-token
rate limit, 429) and `too_many_write_operations` (namespace write-lock contention, as a 429 or as
a 409 route-error tag). The SDK's retry-forever on 429 is off (`auth.create_client`), so this
module owns the waits:

- `retry_after` is honoured (plus jitter, never less than asked); the total wait of one call is
  bounded, then a clear error is raised instead of an apparent hang;
- `too_many_requests` pauses *every* call of this client (the limit is per token) and halves the
  number of requests allowed in flight; each success adds a little back (AIMD), so a storm
  lowers concurrency and a calm period restores it;
- server errors (5xx) and dropped connections are retried a bounded number of times;
- every wait longer than a second is logged as a warning, so it shows in `dvc` output.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from typing import Any, Callable, TypeVar

from .errors import DropboxRemoteError

# A child of DVC's "dvc" logger: `dvc.logger.setup` only attaches its console handlers to "dvc",
# "dvc_objects" and "dvc_data", so a top-level "dvc_dropbox" logger would print through Python's
# last-resort handler (unformatted, fighting the progress bars) or not at all.
logger = logging.getLogger("dvc.dvc_dropbox")

T = TypeVar("T")

TOO_MANY_REQUESTS = "too_many_requests"
TOO_MANY_WRITE_OPERATIONS = "too_many_write_operations"

# Waits at least this long are shown to the user; shorter ones would only be noise.
ANNOUNCE_WAIT_S = 1.0


class DropboxRetryError(DropboxRemoteError):
    """Dropbox kept refusing a call (rate limit, contention, server errors) past our bounds."""


def write_contention(error: Any) -> bool:
    """True if a route error union (or a nested WriteError) is too_many_write_operations.

    Checked structurally, because the tag sits at different depths: `UploadSessionFinishError`,
    `DeleteError` and `UploadError.path.reason` (a WriteError) all can carry it.
    """
    for _ in range(4):  # unions nest at most a few levels; bounded on purpose
        if error is None:
            return False
        is_tag = getattr(error, "is_too_many_write_operations", None)
        if callable(is_tag) and is_tag():
            return True
        # Stone unions keep their member in `_value` (there is no public generic getter).
        value = getattr(error, "_value", None)
        # UploadWriteFailed / similar structs hold the WriteError in `.reason`.
        error = getattr(value, "reason", value)
    return False


def rate_limit_reason(exc: Any) -> str:
    """A RateLimitError's reason: too_many_requests (also plain-text 429s) or write contention."""
    error = getattr(exc, "error", None)
    reason = getattr(error, "reason", None)
    if reason is not None and getattr(reason, "is_too_many_write_operations", lambda: False)():
        return TOO_MANY_WRITE_OPERATIONS
    return TOO_MANY_REQUESTS


class Pacer:
    """Runs SDK calls with bounded, visible retries and an AIMD limit on requests in flight."""

    def __init__(
        self,
        *,
        max_in_flight: int = 16,
        min_in_flight: int = 1,
        max_total_wait: float = 600.0,
        max_error_retries: int = 5,
        default_retry_after: float = 5.0,
        write_contention_wait: float = 1.0,
        max_backoff: float = 60.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        rand: Callable[[], float] = random.random,
    ):
        if max_in_flight < 1 or min_in_flight < 1 or min_in_flight > max_in_flight:
            raise ValueError("need 1 <= min_in_flight <= max_in_flight")
        self.max_in_flight = max_in_flight
        self.min_in_flight = min_in_flight
        self.max_total_wait = max_total_wait
        self.max_error_retries = max_error_retries
        self.default_retry_after = default_retry_after
        self.write_contention_wait = write_contention_wait
        self.max_backoff = max_backoff
        self._sleep = sleep
        self._clock = clock
        self._rand = rand
        self._cond = threading.Condition()
        self._limit = float(max_in_flight)
        self._in_flight = 0
        self._not_before = 0.0  # global pause after too_many_requests (the limit is per token)
        self._last_decrease = -1e18
        self._announced_until = -1e18
        # Observability for tests and benchmarks.
        self.lowest_limit = max_in_flight
        self.retries: dict[str, int] = {}

    # -- the limit -------------------------------------------------------------------------------

    @property
    def limit(self) -> int:
        """Requests currently allowed in flight."""
        with self._cond:
            return int(self._limit)

    def _acquire(self) -> None:
        with self._cond:
            while True:
                pause = self._not_before - self._clock()
                if pause > 0:
                    # Sleep outside the lock so others can finish their calls meanwhile.
                    self._cond.release()
                    try:
                        self._sleep(pause)
                    finally:
                        self._cond.acquire()
                    continue
                if self._in_flight < int(self._limit):
                    self._in_flight += 1
                    return
                self._cond.wait(timeout=1.0)

    def _release(self, success: bool) -> None:
        with self._cond:
            self._in_flight -= 1
            if success and self._limit < self.max_in_flight:
                # Additive increase: about +1 per window of `limit` successful calls.
                self._limit = min(float(self.max_in_flight), self._limit + 1.0 / self._limit)
            self._cond.notify_all()

    def _on_too_many_requests(self, delay: float) -> None:
        with self._cond:
            now = self._clock()
            self._not_before = max(self._not_before, now + delay)
            # Multiplicative decrease, once per congestion event: a storm answers many calls at once
            # and must not collapse the limit to the minimum in one go.
            if now - self._last_decrease >= max(delay, ANNOUNCE_WAIT_S):
                self._last_decrease = now
                self._limit = max(float(self.min_in_flight), self._limit / 2.0)
                self.lowest_limit = min(self.lowest_limit, int(self._limit))

    # -- calls -----------------------------------------------------------------------------------

    def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run `fn(*args, **kwargs)`, retrying what Dropbox asks us to retry, within the bounds."""
        import requests
        from dropbox import exceptions

        waited = 0.0
        errors = 0  # consecutive server/connection errors
        contention = 0  # 409-form write contention carries no retry_after: back off exponentially
        name = getattr(fn, "__name__", "call")
        while True:
            self._acquire()
            success = False
            try:
                result = fn(*args, **kwargs)
                success = True
                return result
            except exceptions.RateLimitError as exc:
                reason = rate_limit_reason(exc)
                delay = float(exc.backoff) if exc.backoff is not None else self.default_retry_after
                failure: BaseException = exc
            except exceptions.ApiError as exc:
                if not write_contention(exc.error):
                    raise
                reason = TOO_MANY_WRITE_OPERATIONS
                delay = self.write_contention_wait * (2 ** min(contention, 6))
                contention += 1
                failure = exc
            except (
                exceptions.InternalServerError,
                requests.exceptions.ConnectionError,
                requests.exceptions.Timeout,
            ) as exc:
                errors += 1
                if errors > self.max_error_retries:
                    raise DropboxRetryError(
                        f"Dropbox call {name} failed {errors} times in a row, giving up: "
                        f"{_describe(exc)}"
                    ) from exc
                reason = "server error" if isinstance(exc, exceptions.HttpError) else "connection"
                delay = min(self.max_backoff, 2.0 ** (errors - 1))
                failure = exc
            finally:
                self._release(success)

            delay = min(delay, self.max_backoff * 10)
            delay = delay * (1.0 + 0.25 * self._rand())  # jitter: spread a storm's retries apart
            if waited + delay > self.max_total_wait:
                raise DropboxRetryError(
                    f"Dropbox kept answering {reason} to {name}; gave up after waiting "
                    f"{waited:.0f} s in total (limit {self.max_total_wait:.0f} s). "
                    "Try again later, or lower the number of jobs (-j)."
                ) from failure
            self.retries[reason] = self.retries.get(reason, 0) + 1
            waited += delay
            if reason == TOO_MANY_REQUESTS:
                self._on_too_many_requests(delay)
                self._announce(reason, delay)
                continue  # _acquire sleeps until the global pause ends
            self._announce(reason, delay)
            self._sleep(delay)

    def _announce(self, reason: str, delay: float) -> None:
        """Warn about waits over a second, once per overlapping pause (a storm is one message)."""
        if delay < ANNOUNCE_WAIT_S:
            logger.debug("Dropbox: %s, retrying in %.1f s", reason, delay)
            return
        with self._cond:
            until = self._clock() + delay
            if until <= self._announced_until + ANNOUNCE_WAIT_S:
                return
            self._announced_until = until
        if reason in (TOO_MANY_REQUESTS, TOO_MANY_WRITE_OPERATIONS):
            message = "Dropbox asked to slow down (%s); waiting %.0f s before retrying"
        else:
            message = "Dropbox request failed (%s); waiting %.0f s before retrying"
        logger.warning(message, reason, delay)


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def default_pacer(jobs: int, **kwargs: Any) -> Pacer:
    return Pacer(max_in_flight=max(1, jobs), **kwargs)


__all__ = [
    "DropboxRetryError",
    "Pacer",
    "default_pacer",
    "logger",
    "rate_limit_reason",
    "write_contention",
]
