"""The pacer: one per SDK client, the only place the plugin waits before trying again.

A generic mechanism, as rclone's lib/pacer: it knows nothing of the SDK. What a failure means comes
from a *policy*, a function from an exception to a `Decision` (for Dropbox: `sdk_errors.classify`):

- `RETRY`: the server asked us to wait (`retry_after`, or an exponential wait when it did not say
  how long). A wait the server sized is always honoured in full (never cut short: Dropbox refuses
  an early retry and may lengthen the penalty); what bounds them is `max_total_wait`, the waits
  one operation may add up (the remote option `retry_wait_limit`, default 1800 s: several of
  Dropbox's 300 s contention waits). `pause_all` pauses *every* call of this pacer (a per-token
  rate limit) and halves the requests allowed in flight; each success adds a little back (AIMD),
  so a storm lowers concurrency and a calm period restores it;
- `BACKOFF`: something broke that may pass (5xx, a dropped connection, a timeout): exponential
  waits with jitter from `first_backoff` (1 s) up to `max_backoff` (2 s), for at most
  `max_error_wait` (60 s) of the clock since the first failure (a burst of 20-odd errors in a row
  passes; a server that stays down is reported within a minute) — a time, not a count, so short
  and long failures are bounded alike (the numbers: DEFAULT_ERROR_WAIT_LIMIT_S);
- `RESUME` and `FAIL`: not retried here; the exception goes to the caller (which resumes from the
  server's state, or translates the error for the user).

`call` runs one request and holds a slot of the in-flight limit; `retry` runs a compound operation
whose requests go through `call` themselves (a delete job, a streaming download); `poll` waits for a
server-side job. Every wait is driven by the injectable `clock`/`sleep` and reported through one
`WaitReport` (which the batch committer shares): waits of a second or more as a warning, once per
*wait episode* — waits for the same reason that follow or overlap each other are one episode, so a
storm, or a call refused ten times in a row, is one line — shorter ones at debug level. Errors
that end a wait loop are raised `from None` (DVC prints the cause chain); the cause goes to the
debug log.
"""

from __future__ import annotations

import enum
import logging
import random
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Optional, TypeVar

from ..errors import DropboxRemoteError, TransferFatal
from ..options import DEFAULT_RETRY_WAIT_LIMIT
from .cancel import Cancels

# A child of DVC's "dvc" logger: `dvc.logger.setup` only attaches its console handlers to "dvc",
# "dvc_objects" and "dvc_data", so a top-level "dvc_dropbox" logger would print through Python's
# last-resort handler (unformatted, fighting the progress bars) or not at all.
logger = logging.getLogger("dvc.dvc_dropbox")

T = TypeVar("T")

# Waits at least this long are shown to the user; shorter ones would only be noise.
ANNOUNCE_WAIT_S = 1.0
# A server-side job is normal work, not trouble: say so only once it takes this long.
POLL_ANNOUNCE_S = 10.0
# Defaults of the bounds (README "How it is fast"): asked-for waits may add up to this much per
# operation (several 300 s contention waits); errors are retried for this long after the first.
DEFAULT_RETRY_WAIT_LIMIT_S = DEFAULT_RETRY_WAIT_LIMIT
# Errors (5xx, dropped connections): waits of 1 s, then 2 s each (+0-25 % jitter), for at most
# 60 s after a call's first failure. Why these numbers (issue 16 item 6):
# - a burst of 20 errors in a row on one call (a serial phase: the token renewal, the start-up
#   check, the commit) costs 1 + 19 x 2 = 39 s, at most 49 s with jitter, under the 60 s
#   budget: it passes. Two such bursts back to back (503 on every route, then 500 on the upload
#   routes) end within ~100 s, inside the 2 minutes a push or pull must end in (measured: push
#   46 s, pull ~80 s). Before, waits grew to 10 s: 175 s for one burst of 20, still retrying
#   after 150 s;
# - a server that stays down is reported after 60 s of errors (then the transfer's one-cause
#   stop ends every other call at once), not after the 300 s it was;
# - 2 s is rclone's cap for Dropbox (lib/pacer maxSleep): a call every 2 s per waiting thread
#   does not hammer a struggling server, and waiting longer between tries would only spend the
#   time budget on fewer tries: a 5xx says nothing about how long to wait (a wait Dropbox sizes
#   is a RETRY, never capped);
# - the first wait is 1 s, not rclone's 10 ms, so it is shown (ANNOUNCE_WAIT_S): a user sees at
#   once that Dropbox is failing and being retried.
DEFAULT_FIRST_BACKOFF_S = 1.0
DEFAULT_MAX_BACKOFF_S = 2.0
DEFAULT_ERROR_WAIT_LIMIT_S = 60.0
# A wait that starts within this long after the previous one of its episode ended continues it.
EPISODE_GAP_S = 5.0


class Action(enum.Enum):
    RETRY = "retry"  # the server asked us to wait, then try again
    BACKOFF = "backoff"  # a failure that may pass: wait longer each time, a bounded number of times
    RESUME = "resume"  # the caller continues from the server's state (e.g. its upload offset)
    FAIL = "fail"  # not retriable: the caller translates it for the user


@dataclass(frozen=True)
class Decision:
    """What a policy says about one failure."""

    action: Action
    reason: str = ""  # short, for messages and the `retries` counter ("too_many_requests")
    retry_after: Optional[float] = None  # RETRY: seconds the server asked for (None: unspecified)
    pause_all: bool = False  # RETRY: the limit is per client, so every call waits
    resume_at: Optional[int] = None  # RESUME: where the server is (e.g. its correct_offset)


Policy = Callable[[BaseException], Decision]


class DropboxRetryError(TransferFatal, DropboxRemoteError):
    """Dropbox kept refusing a call (rate limit, contention, server errors) past our bounds.

    Transfer-fatal: the bounds are minutes of refusals, which the other files would meet too."""


class WaitReport:
    """Shows each wait episode once: the first wait of a reason as a warning, its continuation
    (more waits for the same reason, overlapping or right after) at debug level only."""

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self._clock = clock
        self._lock = threading.Lock()
        self._episodes: dict[str, float] = {}  # reason -> when its announced waits end
        self.announced = 0  # warnings shown (observability for tests)

    def wait(self, reason: str, delay: float, message: str) -> None:
        """Report a wait of `delay` s for `reason`; `message` has %s for reason and %.0f for it."""
        if delay < ANNOUNCE_WAIT_S:
            logger.debug("Dropbox: %s, retrying in %.1f s", reason, delay)
            return
        with self._lock:
            now = self._clock()
            until = now + delay
            ends = self._episodes.get(reason)
            continuing = ends is not None and now <= ends + EPISODE_GAP_S
            self._episodes[reason] = max(until, ends or until) if continuing else until
            if not continuing:
                self.announced += 1
        if continuing:
            logger.debug("Dropbox: %s, still waiting (%.1f s more)", reason, delay)
        else:
            logger.warning(message, reason, delay)


class Pacer:
    """Runs calls with bounded, visible retries and an AIMD limit on requests in flight."""

    def __init__(
        self,
        policy: Policy,
        *,
        max_in_flight: int = 16,
        min_in_flight: int = 1,
        max_total_wait: float = DEFAULT_RETRY_WAIT_LIMIT_S,
        max_error_wait: float = DEFAULT_ERROR_WAIT_LIMIT_S,
        unspecified_wait: float = 1.0,
        first_backoff: float = DEFAULT_FIRST_BACKOFF_S,
        max_backoff: float = DEFAULT_MAX_BACKOFF_S,
        max_unsized_wait: float = 60.0,
        sleep: Optional[Callable[[float], None]] = None,
        clock: Callable[[], float] = time.monotonic,
        rand: Callable[[], float] = random.random,
    ):
        if max_in_flight < 1 or min_in_flight < 1 or min_in_flight > max_in_flight:
            raise ValueError("need 1 <= min_in_flight <= max_in_flight")
        self.policy = policy
        self.max_in_flight = max_in_flight
        self.min_in_flight = min_in_flight
        self.max_total_wait = max_total_wait
        self.max_error_wait = max_error_wait
        # First wait when the server asks for one without saying how long (doubles each time).
        self.unspecified_wait = unspecified_wait
        # The first and the longest single wait after an error (DEFAULT_ERROR_WAIT_LIMIT_S).
        self.first_backoff = first_backoff
        self.max_backoff = max_backoff
        # The longest single wait the server asked for without sizing it (409 contention).
        self.max_unsized_wait = max_unsized_wait
        # Every wait is a wait on the running transfer's cancel event (transfer/cancel.py), so
        # Ctrl-C or a one-cause stop ends it at once; an injected `sleep` (fake time in tests)
        # is checked against the event before and after.
        self.cancels = Cancels()
        self._sleep = sleep
        self._clock = clock
        self._rand = rand
        self._cond = threading.Condition()
        self._limit = float(max_in_flight)
        self._in_flight = 0
        self._not_before = 0.0  # global pause after a pause_all decision (a per-token limit)
        self._last_decrease = -1e18
        self.waits = WaitReport(clock)
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
                        self._pause(pause)
                    finally:
                        self._cond.acquire()
                    continue
                if self._in_flight < int(self._limit):
                    self._in_flight += 1
                    return
                self.cancels.current.check()
                self._cond.wait(timeout=1.0)

    def _release(self, success: bool) -> None:
        with self._cond:
            self._in_flight -= 1
            if success and self._limit < self.max_in_flight:
                # Additive increase: about +1 per window of `limit` successful calls.
                self._limit = min(float(self.max_in_flight), self._limit + 1.0 / self._limit)
            # Wake as many waiters as there are free slots, not all of them: with 64 threads a
            # notify_all per call was ~30 context switches per small file (profiles/client_cpu.md).
            self._cond.notify(max(1, int(self._limit) - self._in_flight))

    def _hold(self, delay: float) -> None:
        """No new call starts for `delay` seconds (a pause that is already longer stays)."""
        with self._cond:
            self._not_before = max(self._not_before, self._clock() + delay)

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
        """Run one request `fn(*args, **kwargs)`, retrying what the policy says, within bounds."""
        return self._run(fn, args, kwargs, slot=True)

    def retry(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Like `call`, for an operation whose own requests go through `call` (holds no slot)."""
        return self._run(fn, args, kwargs, slot=False)

    def _run(self, fn: Callable[..., T], args: Any, kwargs: Any, *, slot: bool) -> T:
        name = _name(fn)
        waited = 0.0  # waits the server asked for, in total (bounded by max_total_wait)
        errors = 0  # consecutive BACKOFF failures
        first_error = 0.0  # when the first of them happened (bounded by max_error_wait)
        unspecified = 0  # RETRY waits the server did not size: exponential from unspecified_wait
        while True:
            # Each attempt (each chunk of a session, each range of a download) starts only while
            # its transfer is not cancelled.
            self.cancels.current.check()
            if slot:
                self._acquire()
            attempt_started = self._clock()
            success = False
            try:
                result = fn(*args, **kwargs)
                success = True
                return result
            except Exception as exc:
                failure = exc
                decision = self.policy(exc)
                if decision.pause_all and decision.retry_after is not None:
                    # Pause the other calls *before* this slot is released: releasing it wakes
                    # callers waiting for a slot, which would otherwise send while this thread
                    # is still deciding how long to wait (requests after the 429 arrived).
                    self._hold(decision.retry_after)
            finally:
                if slot:
                    self._release(success)

            if decision.action in (Action.FAIL, Action.RESUME):
                raise failure
            if decision.action is Action.BACKOFF:
                if errors == 0:
                    first_error = attempt_started  # a timed-out attempt's own time counts
                errors += 1
                exponential = self.first_backoff * 2.0 ** min(errors - 1, 30)
                delay = self._jitter(min(self.max_backoff, exponential))
                elapsed = self._clock() - first_error
                if elapsed + delay > self.max_error_wait:
                    logger.debug("Dropbox call %s: giving up after %r", name, failure)
                    raise DropboxRetryError(
                        f"Dropbox call {name} failed {errors} times in a row "
                        f"({decision.reason}), giving up after {elapsed:.0f} s; check the network "
                        "connection and try again later"
                    ) from None
            else:
                if decision.retry_after is not None:
                    delay = decision.retry_after  # asked for: honoured in full, never capped
                else:
                    exponential = self.unspecified_wait * (2 ** min(unspecified, 6))
                    delay = min(self.max_unsized_wait, exponential)
                    unspecified += 1
                delay = self._jitter(delay)
                if waited + delay > self.max_total_wait:
                    logger.debug("Dropbox call %s: giving up after %r", name, failure)
                    raise DropboxRetryError(
                        f"Dropbox kept answering {decision.reason} to {name}; gave up after "
                        f"waiting {waited:.0f} s in total (limit {self.max_total_wait:.0f} s). "
                        "Try again later, raise the remote's retry_wait_limit, or lower the "
                        "number of jobs (-j)."
                    ) from None
                waited += delay
            logger.debug("Dropbox call %s: %r", name, failure)
            self.retries[decision.reason] = self.retries.get(decision.reason, 0) + 1
            self._announce(decision.reason, delay, decision.action)
            if decision.pause_all:
                self._on_too_many_requests(delay)
                continue  # _acquire (here or in the operation's calls) sleeps out the pause
            self._pause(delay)

    def _pause(self, delay: float) -> None:
        """Wait `delay` s, or raise `TransferCancelled` as soon as the transfer is cancelled."""
        cancel = self.cancels.current
        if self._sleep is None:
            cancel.wait(delay)
            return
        cancel.check()
        self._sleep(delay)
        cancel.check()

    def _jitter(self, delay: float) -> float:
        """Spread a storm's retries apart; only ever longer than asked, never shorter."""
        return delay * (1.0 + 0.25 * self._rand())

    def poll(
        self,
        fn: Callable[..., T],
        *args: Any,
        done: Callable[[T], bool],
        what: Optional[str] = None,
        interval: float = 0.05,
        max_interval: float = 4.0,
        deadline: float = 900.0,
        **kwargs: Any,
    ) -> T:
        """Call `fn` until `done(result)`: waits double from `interval` up to `max_interval`, and
        the whole poll is bounded by `deadline` seconds of the pacer's clock. `what` names the job
        in messages."""
        name = what or _name(fn)
        started = self._clock()
        delay = interval
        announced = False
        while True:
            result = self.call(fn, *args, **kwargs)
            if done(result):
                return result
            elapsed = self._clock() - started
            if elapsed + delay > deadline:
                raise DropboxRetryError(
                    f"Dropbox did not finish {name} within {deadline:.0f} s; try again later"
                )
            if not announced and elapsed >= POLL_ANNOUNCE_S:
                announced = True
                logger.warning(
                    "Dropbox is still working on %s after %.0f s; waiting for it (at most %.0f s)",
                    name,
                    elapsed,
                    deadline,
                )
            else:
                logger.debug("Dropbox: %s in progress, checking again in %.2f s", name, delay)
            self._pause(delay)
            delay = min(max_interval, delay * 2)

    def report_commit_wait(self, reason: str, delay: float) -> None:
        """The batch committer's per-entry waits, in the same episodes as the pacer's own."""
        message = "Dropbox asked to slow down (%s); committing again in %.0f s"
        self.waits.wait(reason, delay, message)

    def _announce(self, reason: str, delay: float, action: Action = Action.RETRY) -> None:
        """Warn about waits over a second, once per wait episode (a storm is one message)."""
        if action is Action.RETRY:
            message = "Dropbox asked to slow down (%s); waiting %.0f s before retrying"
        else:
            message = "Dropbox request failed (%s); waiting %.0f s before retrying"
        self.waits.wait(reason, delay, message)


def _name(fn: Callable[..., Any]) -> str:
    """The operation's name for messages (a private method's name without its underscore)."""
    return str(getattr(fn, "__name__", "call")).lstrip("_") or "call"


__all__ = [
    "Action",
    "Decision",
    "DropboxRetryError",
    "Pacer",
    "Policy",
    "WaitReport",
    "logger",
]
