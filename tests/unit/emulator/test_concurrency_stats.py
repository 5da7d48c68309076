"""The emulator's count of API calls served at once (GET/DELETE /_emulator/concurrency)."""

from __future__ import annotations

from dropbox_emulator.control.knobs import Stats


def test_counts_calls_at_once_and_restarts_the_high_water_mark() -> None:
    stats = Stats()
    with stats.serving():
        with stats.serving():
            assert stats.concurrency() == {"in_flight": 2, "most_in_flight": 2}
        # A new mark starts from the calls still being served.
        assert stats.concurrency(restart=True) == {"in_flight": 1, "most_in_flight": 2}
        assert stats.concurrency() == {"in_flight": 1, "most_in_flight": 1}
    assert stats.concurrency() == {"in_flight": 0, "most_in_flight": 1}
    stats.reset()
    assert stats.concurrency() == {"in_flight": 0, "most_in_flight": 0}
