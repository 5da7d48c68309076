"""Who is refused during a cooldown (every request of the token) and what is an early retry (only
a refused request sent again before its wait is over)."""

from __future__ import annotations

import time

from dropbox_emulator.control.profile import Cooldowns

KEY = ("token-digest", "requests")
REFUSED = "fingerprint-of-the-refused-request"
OTHER = "fingerprint-of-another-request"


def test_every_request_of_the_token_is_refused_while_it_cools_down() -> None:
    cooldowns = Cooldowns()
    cooldowns.start(KEY, 5.0, REFUSED)
    remaining = cooldowns.remaining(KEY)
    assert remaining is not None and 4.0 < remaining <= 5.0
    assert cooldowns.remaining(("another-token", "requests")) is None


def test_only_the_refused_request_sent_again_is_an_early_retry() -> None:
    cooldowns = Cooldowns()
    cooldowns.start(KEY, 5.0, REFUSED)
    assert not cooldowns.early(KEY, OTHER)  # another thread's request, maybe already on its way
    assert cooldowns.early(KEY, REFUSED)
    assert not cooldowns.early(("token-digest", "write"), REFUSED)  # another kind of wait
    assert not cooldowns.early(KEY, None)  # not known (a job's thread)
    cooldowns.start(KEY, 5.0, OTHER)  # the other one, refused in turn, now counts too
    assert cooldowns.early(KEY, OTHER)


def test_a_wait_that_is_over_makes_no_early_retry() -> None:
    cooldowns = Cooldowns()
    cooldowns.start(KEY, 0.01, REFUSED)
    assert cooldowns.early(KEY, REFUSED)
    time.sleep(0.02)
    assert cooldowns.remaining(KEY) is None
    assert not cooldowns.early(KEY, REFUSED)


def test_a_longer_wait_is_never_shortened() -> None:
    cooldowns = Cooldowns()
    cooldowns.start(KEY, 5.0, REFUSED)
    cooldowns.start(KEY, 0.01, REFUSED)
    time.sleep(0.02)
    assert cooldowns.remaining(KEY) is not None
    assert cooldowns.early(KEY, REFUSED)


def test_tables_stay_bounded() -> None:
    cooldowns = Cooldowns()
    cooldowns.MAX_ENTRIES = 10
    for i in range(50):
        cooldowns.start((f"t{i}", "requests"), 5.0, f"request-{i}")
    assert len(cooldowns._until) <= 10 and len(cooldowns._refused) <= 10
