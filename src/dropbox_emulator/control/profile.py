"""The Dropbox realism profile, the time scale, and the seeded choices the emulator makes.

`--profile dropbox` (or `POST /_emulator/config {"profile": "dropbox"}`) sets every value in
`PROFILES["dropbox"]`; each one can still be overridden on its own, by a flag or in the same
config request. Without a profile the emulator stays fast (no latency, waits of 1 s, no rate
limit) for unit-style tests. Where each value comes from is in `SOURCES` (and the README table).

Time scale (`--time-scale F`)
-----------------------------
F multiplies every delay the emulator adds (latency, commit time, slow commits, lock waits,
how long jobs stay `in_progress`) and every wait it asks for (`retry_after`). Dropbox's waits
travel as whole seconds: the JSON `RateLimitError.retry_after` is a stone `UInt64` and the SDK
reads a text/plain 429's `Retry-After` header with `int()` (dropbox_client.py,
`raise_dropbox_error_for_resp`), so a scaled wait cannot go on the wire with sub-second
precision. The emulator therefore

* *enforces* the exact scaled wait (`wait_s = real * F`, e.g. 300 s at F=0.01 → 3.0 s; with
  `enforce_retry_after`, a retry before it has passed is refused again and counted in
  `/_emulator/stats` `early_retries`), and
* *asks for* that wait rounded UP to whole seconds, never below 1 (`retry_after = ceil(wait_s)`):
  15 s at F=0.01 is sent as 1, 300 s as 3. Rounding up means a client that honours what it is
  told is never early; rounding down would send 0 ("retry now") and punish exactly the clients
  that behave. Proportions survive as far as whole seconds allow (15-300 s → 1-3 s at F=0.01).

No extra header says "I am scaled": a client cannot (and must not) tell the emulator from
Dropbox. Rate budgets (`rate_limit_per_s`, `namespace_commits_per_s`) are *not* scaled: a
client's own speed is not scaled either, so at F<1 it meets them sooner, never later (harsher,
not gentler).

Every random choice (which form contention takes, the waits drawn from a range, which 429 is
plain text, how long a job stays in progress) comes from one `random.Random(seed)`, so a run
with the same `--seed` and the same request order makes the same choices.
"""

from __future__ import annotations

import dataclasses
import math
import random
import threading
import time
from typing import Any, Optional

from dropbox_emulator.config import EmulatorConfig

# Each named profile: config field -> value. Fields not named keep their current value.
PROFILES: dict[str, dict[str, Any]] = {
    "dropbox": {
        "latency_ms": 110.0,
        "commit_ms": 250.0,
        "lock_wait_ms": 100.0,
        "rate_limit_per_s": 12.0,
        "namespace_commits_per_s": 4.0,
        "contention_retry_after_s": (15.0, 300.0),
        "too_many_requests_retry_after_s": (15.0, 30.0),
        "contention_409_share": 0.5,
        "batch_contention_429_share": 0.1,
        "plain_text_429_share": 0.2,
        "job_in_progress_s": (1.0, 120.0),
        "slow_commit_share": 0.02,
        "slow_commit_ms": 10_000.0,
        "enforce_retry_after": True,
        "stream_mib_per_s": 12.0,
    },
}

# Where each realism value comes from (the README's "Dropbox realism profile" table).
SOURCES: dict[str, str] = {
    "latency_ms": "X-Server-Response-Time: 109 on a finish_batch/check in rclone#5008's log, "
    "plus a network round trip",
    "commit_ms": "estimate: Dropbox serialises commits per namespace (data ingress guide); "
    "two parallel uploads already collide (rclone#1539)",
    "lock_wait_ms": "estimate: a commit that finds the namespace busy fails fast (rclone#1539, "
    "rclone#5156 logs show immediate too_many_write_operations)",
    "rate_limit_per_s": "rclone users run Dropbox at --tpslimit 12 to stay below "
    "too_many_requests (rclone#5156)",
    "namespace_commits_per_s": "estimate: rclone#1539 (--transfers=1 avoids the errors)",
    "contention_retry_after_s": "'Trying again in 300 seconds' (rclone#5156); 15-300 s waits "
    "reported for write contention (issue 10, sdk-js#270)",
    "too_many_requests_retry_after_s": "retry_after 15 on too_many_requests "
    "(dropbox-sdk-python#420, dropbox-sdk-dotnet#370)",
    "contention_409_share": "estimate; the 409 forms are in the stone unions: "
    "WriteError/DeleteError/UploadSessionFinishError.too_many_write_operations",
    "batch_contention_429_share": "estimate: batches usually fail per entry (sdk-js#270, "
    "git-annex-remote-rclone#61), sometimes as a whole 429 (rclone#5156)",
    "plain_text_429_share": "estimate: plain-text 429 bodies seen by clients "
    "(spatie/flysystem-dropbox#85); the SDK then raises RateLimitError(error=None)",
    "job_in_progress_s": "a 1-file finish_batch job stayed in_progress for 120 s (rclone#5008)",
    "slow_commit_share": "estimate: occasional slow finishes (rclone#2158)",
    "slow_commit_ms": "'about 10 or 15 seconds until the first error' on a slow finish "
    "(rclone#2158)",
    "enforce_retry_after": "Dropbox's data ingress guide: wait Retry-After to avoid a "
    "subsequent rate limit response",
    "stream_mib_per_s": "estimate: one upload stream to Dropbox is seen at 10-12 MB/s "
    "('10MB/s transfer which seems reasonable', rclone#1783; ~12 MB/s measured for a DVC "
    "Dropbox remote, treeverse/dvc#4793), 25 MiB/s on a fast line (a 1.4 GiB rclone copy, "
    "animosity22/homescripts#98), while concurrent sessions reach ~117 MB/s "
    "(350 GB in ~50 min, a Dropbox engineer in rclone#5008)",
    "total_mib_per_s": "not part of the profile: the total is the user's own link, not "
    "Dropbox's (Dropbox's own test reached ~117 MB/s with concurrent sessions, rclone#5008)",
    "session_lifetime_s": "stone (upload_session/start): 'An upload session can be used for a "
    "maximum of 7 days', then UploadSessionLookupError.not_found",
}

SHARES = (
    "contention_409_share",
    "batch_contention_429_share",
    "plain_text_429_share",
    "slow_commit_share",
)
RANGES = ("contention_retry_after_s", "too_many_requests_retry_after_s", "job_in_progress_s")


class ProfileError(ValueError):
    pass


def apply_profile(config: EmulatorConfig, name: Optional[str]) -> None:
    """Set every value of profile `name`; None puts the fast defaults back."""
    if name is None:
        defaults = {f.name: f for f in dataclasses.fields(EmulatorConfig)}
        for field in {key for values in PROFILES.values() for key in values}:
            default = defaults[field].default
            setattr(config, field, default)
        config.profile = None
        return
    values = PROFILES.get(name)
    if values is None:
        raise ProfileError(f"unknown profile {name!r}; known: {sorted(PROFILES)}")
    for field, value in values.items():
        setattr(config, field, value)
    config.profile = name


def parse_range(value: Any, field: str) -> tuple[float, float]:
    """`[low, high]`, a single number, or "LOW-HIGH"/"N" text: seconds, low <= high."""
    if isinstance(value, str):
        low_text, sep, high_text = value.partition("-")
        try:
            numbers = [float(low_text), float(high_text if sep else low_text)]
        except ValueError:
            raise ProfileError(
                f"'{field}' must be N or LOW-HIGH (seconds), got {value!r}"
            ) from None
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        numbers = [float(value), float(value)]
    elif (
        isinstance(value, (list, tuple))
        and len(value) == 2
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
    ):
        numbers = [float(value[0]), float(value[1])]
    else:
        raise ProfileError(f"'{field}' must be [low, high] (seconds)")
    low, high = numbers
    if not (0 <= low <= high) or not math.isfinite(high):
        raise ProfileError(f"'{field}' must satisfy 0 <= low <= high, got {value!r}")
    return low, high


def parse_share(value: Any, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise ProfileError(f"'{field}' must be a number between 0 and 1")
    return float(value)


@dataclasses.dataclass(frozen=True)
class Wait:
    """A wait the emulator asks for: `retry_after` on the wire, `seconds` enforced."""

    retry_after: int
    seconds: float


class Realism:
    """The seeded choices and the time scale, on the live config."""

    def __init__(self, config: EmulatorConfig):
        self._config = config
        self._lock = threading.Lock()
        self._random = random.Random(config.seed)
        self._seed = config.seed

    def reseed(self) -> None:
        with self._lock:
            self._seed = self._config.seed
            self._random = random.Random(self._seed)

    def _draw(self) -> float:
        with self._lock:
            if self._seed != self._config.seed:  # changed live: start its sequence
                self._seed = self._config.seed
                self._random = random.Random(self._seed)
            return self._random.random()

    @property
    def scale(self) -> float:
        return self._config.time_scale

    def delay_s(self, ms: float) -> float:
        """A delay the emulator adds, in seconds, scaled."""
        return max(ms, 0.0) / 1000.0 * self.scale

    def sleep_ms(self, ms: float) -> None:
        seconds = self.delay_s(ms)
        if seconds > 0:
            time.sleep(seconds)

    def happens(self, share: float) -> bool:
        """True for `share` of the calls (0 never draws, so the default stays deterministic)."""
        if share <= 0:
            return False
        if share >= 1:
            return True
        return self._draw() < share

    def between(self, bounds: tuple[float, float]) -> float:
        low, high = bounds
        if high <= low:
            return low
        return low + (high - low) * self._draw()

    def wait(self, bounds: tuple[float, float], at_least: float = 0.0) -> Wait:
        """A wait drawn from `bounds` (real seconds, at least `at_least`), scaled; the wire
        value is whole seconds rounded up, never below 1 (see the module docstring)."""
        seconds = max(self.between(bounds), at_least) * self.scale
        return Wait(max(1, math.ceil(seconds - 1e-9)), seconds)

    def job_delay_s(self) -> float:
        return self.between(self._config.job_in_progress_s) * self.scale


class Cooldowns:
    """Who was told to wait, and until when.

    Two questions, answered differently on purpose:

    * *Is this token still cooling down?* (`remaining`) — per token, whatever it asks: on
      Dropbox a rate limit belongs to the token (or the namespace), so every request that
      arrives during the wait is refused again, also one that was already on its way when the
      429 went out. That is the enforcement, never gentler than Dropbox.
    * *Is this request an early retry?* (`early`) — only if it is *the same request again*
      (same route, argument and size: `http.calls` fingerprints them) as one that was answered
      a 429 whose wait is not over. Its client had read that 429 before sending it again, so it
      knew it had to wait. Any other request of the token that arrives during the wait proves
      nothing: a client with many threads always has some on their way, and its HTTP pool
      hands a connection that just carried a 429 to one of them before the client has acted on
      the 429 (measured in the realism profile's test: 3-25 ms after the 429, from threads that
      had passed their pause check before the pause began; under load it happened on the same
      connection twice). Time or per-connection allowances were tried and rejected: client
      delays are not scaled by --time-scale, so any fixed allowance either excuses real early
      retries at small scales or blames requests in flight under load. Such requests are still
      refused; once refused, their own retries count.
    """

    MAX_ENTRIES = 10_000  # per table; expired ones go first, then the oldest

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._until: dict[tuple[str, ...], float] = {}
        # (key, fingerprint of a refused request) -> end of the wait its 429 asked for
        self._refused: dict[tuple[tuple[str, ...], str], float] = {}

    def reset(self) -> None:
        with self._lock:
            self._until.clear()
            self._refused.clear()

    def start(self, key: tuple[str, ...], seconds: float, refused: Optional[str] = None) -> None:
        """`key` must wait `seconds` (or longer, if it already had to); `refused` fingerprints
        the request the 429 that says so answers (None: not known, e.g. on a job's thread)."""
        now = time.monotonic()
        with self._lock:
            self._until[key] = max(self._until.get(key, 0.0), now + seconds)
            _bounded(self._until, now, self.MAX_ENTRIES)
            if refused is not None:
                told = (key, refused)
                self._refused[told] = max(self._refused.get(told, 0.0), now + seconds)
                _bounded(self._refused, now, self.MAX_ENTRIES)

    def remaining(self, key: tuple[str, ...]) -> Optional[float]:
        """Seconds left for `key`, or None if it was not told to wait (or the wait is over)."""
        now = time.monotonic()
        with self._lock:
            until = self._until.get(key)
            if until is None:
                return None
            if until <= now:
                del self._until[key]
                return None
            return until - now

    def early(self, key: tuple[str, ...], fingerprint: Optional[str]) -> bool:
        """True if the request `fingerprint` names was refused for `key` and its wait is not
        over: sending it now is an early retry (see the class docstring)."""
        if fingerprint is None:
            return False
        now = time.monotonic()
        with self._lock:
            until = self._refused.get((key, fingerprint))
            if until is None:
                return False
            if until <= now:
                del self._refused[(key, fingerprint)]
                return False
            return True


def _bounded(table: dict[Any, float], now: float, limit: int) -> None:
    if len(table) > limit:
        for old in [k for k, t in table.items() if t <= now]:
            del table[old]
        while len(table) > limit:
            del table[next(iter(table))]
