"""A too_many_requests seen by one call pauses the client's other calls before they can start.

The emulator counts as an early retry a request that comes back on a connection that was answered
a 429 before that wait is over; the pacer's part is that no call *starts* after a pausing 429 was
received, not even one that was only waiting for the slot the refused call gives back.
"""

from __future__ import annotations

import logging
import threading

import pytest
from dropbox import auth, exceptions

from dvc_dropbox.sdk_errors import classify
from dvc_dropbox.transfer.pacer import Pacer
from tests.helpers.fake_time import FakeTime


def test_a_caller_waiting_for_the_slot_starts_only_after_the_wait(
    caplog: pytest.LogCaptureFixture,
) -> None:
    t = FakeTime()
    pacer = Pacer(classify, max_in_flight=1, sleep=t.sleep, clock=t.clock, rand=lambda: 0.0)
    refused_at: list[float] = []
    other_started = threading.Event()
    other_started_at: list[float] = []

    def refused_once() -> str:
        if not refused_at:
            refused_at.append(t.clock())
            # The other caller is queued for this call's slot by now.
            while not pacer._cond._waiters:  # type: ignore[attr-defined]
                threading.Event().wait(0.001)
            reason = auth.RateLimitReason.too_many_requests
            raise exceptions.RateLimitError("req", auth.RateLimitError(reason, 5), 5)
        return "ok"

    def other() -> str:
        other_started_at.append(t.clock())
        other_started.set()
        return "other"

    class HoldTheAnnouncement(logging.Handler):
        """Keeps the refused call between giving back its slot and its announcement until the
        other caller has started: the interleaving a busy machine produces."""

        def emit(self, record: logging.LogRecord) -> None:
            if "slow down" in record.getMessage():
                other_started.wait(2.0)

    handler = HoldTheAnnouncement()
    logging.getLogger("dvc.dvc_dropbox").addHandler(handler)
    try:
        first = threading.Thread(target=pacer.call, args=(refused_once,))
        first.start()
        while not refused_at:
            threading.Event().wait(0.001)
        second = threading.Thread(target=pacer.call, args=(other,))
        second.start()
        first.join(10)
        second.join(10)
    finally:
        logging.getLogger("dvc.dvc_dropbox").removeHandler(handler)
    assert other_started_at, "the other call never ran"
    assert other_started_at[0] >= refused_at[0] + 5, (refused_at, other_started_at, t.sleeps)
