"""The bandwidth caps' arithmetic (http/bandwidth.py): GCRA reservations, quanta, time scale."""

from __future__ import annotations

from pathlib import Path

import pytest

from dropbox_emulator.config import EmulatorConfig
from dropbox_emulator.http.bandwidth import MAX_QUANTUM, MIB, MIN_QUANTUM, Bandwidth, _Bucket


def test_a_bucket_spaces_reservations_by_size_over_rate() -> None:
    bucket, rate, credit = _Bucket(), 1000.0, 0.02
    assert bucket.reserve(20, rate, now=100.0, credit_s=credit) == pytest.approx(0.0)
    # back to back: each 20 bytes is due 20 ms after the previous ones
    assert bucket.reserve(20, rate, now=100.0, credit_s=credit) == pytest.approx(0.02)
    assert bucket.reserve(20, rate, now=100.0, credit_s=credit) == pytest.approx(0.04)
    # a sleep that overshot by 5 ms is made up by the next wait, not lost
    assert bucket.reserve(20, rate, now=100.045, credit_s=credit) == pytest.approx(0.015)
    # after an idle second, only one quantum of credit: no burst of a second's worth
    assert bucket.reserve(20, rate, now=101.5, credit_s=credit) == pytest.approx(0.0)
    assert bucket.reserve(1000, rate, now=101.5, credit_s=credit) == pytest.approx(1.0)


def test_quanta_follow_the_slowest_cap_and_the_time_scale(tmp_path: Path) -> None:
    config = EmulatorConfig(data_dir=tmp_path)
    stream = Bandwidth(config).stream()
    assert stream.quantum() is None  # no cap: nothing paced
    config.stream_mib_per_s = 2
    assert stream.quantum() == int(2 * MIB * 0.02)  # 20 ms of the cap
    config.total_mib_per_s = 0.1
    assert stream.quantum() == MIN_QUANTUM  # the slower cap decides, never below 16 KiB
    config.total_mib_per_s = None
    config.stream_mib_per_s = 10_000
    assert stream.quantum() == MAX_QUANTUM
    config.stream_mib_per_s, config.time_scale = 2, 0.5
    assert Bandwidth(config).rates() == (4 * MIB, None)  # a rate: divided by the scale


def test_connections_share_the_total_but_not_their_own(tmp_path: Path) -> None:
    config = EmulatorConfig(data_dir=tmp_path, stream_mib_per_s=1, total_mib_per_s=None)
    bandwidth = Bandwidth(config)
    first, second = bandwidth.stream(), bandwidth.stream()
    assert first._own is not second._own and first._total is second._total
