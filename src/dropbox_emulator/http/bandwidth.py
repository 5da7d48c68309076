"""Dropbox's bandwidth shape: a throughput cap per connection and one shared by all of them.

On Dropbox one TCP connection is bounded by round trips and window size (single uploads are
seen at 10-25 MiB/s, `control/profile.py` has the sources) while concurrent connections add up
(rclone#5008: 350 GB in ~50 min with concurrent upload sessions); over loopback one stream is
as fast as the CPU, so without a cap parallel chunks would look pointless. The caps apply to
request bodies read (`bodies.BodyReader`) and response bodies written (`Connection.respond`,
`downloads`), not to request lines and headers (a few hundred bytes).

Each cap is a GCRA token bucket (a "theoretical arrival time" per bucket): moving n bytes
reserves n/rate seconds after the previous reservation, and the mover sleeps until its bytes are
due. Bodies move in quanta of ~20 ms of the slowest cap, so the rate is smooth (no one-second
bursts), and one quantum of credit absorbs sleep overshoot. A connection takes from its own
bucket and the shared one, and sleeps for the later of the two. Per quantum that is a lock, a
few float operations and one sleep: overhead per byte is nil at high caps (quantum 4 MiB).

Time scale: a cap is a rate, the inverse of a duration. `--time-scale F` multiplies every delay
the emulator adds, and per-stream throughput on Dropbox is a consequence of the round-trip time
(which `latency_ms` models and F scales), so the effective cap is `cap / F`: at F = 0.01 a
12 MiB/s cap moves 1.2 GiB/s, a transfer takes a hundredth of its Dropbox time, and the ratio
parallel/single stays what it is at F = 1 wherever the machine can move bytes that fast. A test
that wants the cap itself with a small F sets `cap x F`.
"""

from __future__ import annotations

import threading
import time
from typing import Optional

from dropbox_emulator.config import EmulatorConfig

MIB = 1024 * 1024
QUANTUM_S = 0.02  # bytes move in pieces of this much time at the slowest cap
MIN_QUANTUM = 16 * 1024
MAX_QUANTUM = 4 * 1024 * 1024  # downloads.SEND_BLOCK: at a high cap a body moves as uncapped


class _Bucket:
    """One GCRA bucket: when the bytes reserved so far are all due."""

    __slots__ = ("_due", "_lock")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._due = 0.0  # monotonic time at which everything reserved so far has moved

    def reserve(self, n: int, rate: float, now: float, credit_s: float) -> float:
        """Reserve `n` bytes at `rate` bytes/s; the seconds to wait before moving them."""
        with self._lock:
            due = max(self._due, now - credit_s) + n / rate
            self._due = due
        return due - now


class Bandwidth:
    """The server's caps, read from the live config on every quantum (changes apply at once)."""

    def __init__(self, config: EmulatorConfig):
        self._config = config
        self._total = _Bucket()

    def rates(self) -> tuple[Optional[float], Optional[float]]:
        """(per-connection, total) caps in bytes/s, time-scaled; None = no cap."""
        config = self._config
        stream, total = config.stream_mib_per_s, config.total_mib_per_s
        if not stream and not total:
            return None, None
        scale = config.time_scale
        return (
            stream * MIB / scale if stream else None,
            total * MIB / scale if total else None,
        )

    def stream(self) -> Stream:
        """The pacer of one new connection."""
        return Stream(self, self._total)


class Stream:
    """One connection's share: its own bucket plus the server's total."""

    __slots__ = ("_bandwidth", "_own", "_total")

    def __init__(self, bandwidth: Bandwidth, total: _Bucket):
        self._bandwidth = bandwidth
        self._total = total
        self._own = _Bucket()

    def quantum(self) -> Optional[int]:
        """How many bytes to move before pacing again, or None while nothing is capped."""
        stream, total = self._bandwidth.rates()
        if stream is None:
            if total is None:
                return None
            slowest = total
        else:
            slowest = stream if total is None else min(stream, total)
        return int(min(MAX_QUANTUM, max(MIN_QUANTUM, slowest * QUANTUM_S)))

    def pace(self, n: int) -> None:
        """Before moving `n` bytes: wait until both caps allow them."""
        if n <= 0:
            return
        stream, total = self._bandwidth.rates()
        if stream is None and total is None:
            return
        now = time.monotonic()
        wait = 0.0
        if stream is not None:
            wait = self._own.reserve(n, stream, now, _credit_s(stream))
        if total is not None:
            wait = max(wait, self._total.reserve(n, total, now, _credit_s(total)))
        if wait > 0:
            time.sleep(wait)


def _credit_s(rate: float) -> float:
    """One quantum of credit at `rate`: a quantum moves at once after an idle time, and the
    time a sleep overshoots is made up by the next one instead of lost."""
    return min(MAX_QUANTUM, max(MIN_QUANTUM, rate * QUANTUM_S)) / rate
