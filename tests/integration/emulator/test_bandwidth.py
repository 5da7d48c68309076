"""Dropbox's bandwidth shape, through the official SDK over HTTPS: a throughput cap per
connection, one shared by all connections, both paced smoothly and time-scaled.

The caps are promises bounded by time, so these tests measure bytes over elapsed time, with
generous bands: a cap of R MiB/s must make S MiB take at least about S/R seconds (minus the
one quantum of credit the bucket gives), and never several times longer.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import os
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from tests.helpers.emulator import EmulatorProcess, sdk_client

MIB = 1024 * 1024
DATA = os.urandom(4 * MIB)
Start = Callable[..., EmulatorProcess]


@pytest.fixture
def start(monkeypatch: pytest.MonkeyPatch) -> Iterator[Start]:
    """Starts an emulator of its own with the given command-line options."""
    with contextlib.ExitStack() as stack:

        def started(*args: str) -> EmulatorProcess:
            emu = stack.enter_context(EmulatorProcess(*args))
            monkeypatch.setenv("REQUESTS_CA_BUNDLE", emu.ca_bundle)
            return emu

        yield started


def connected(emu: EmulatorProcess) -> Any:
    """An SDK client with its own connection, made before any timing starts."""
    dbx = sdk_client(emu)
    dbx.check_user()
    return dbx


def timed(action: Any, *args: Any) -> float:
    started = time.monotonic()
    action(*args)
    return time.monotonic() - started


def download(dbx: Any, path: str) -> int:
    _, response = dbx.files_download(path)
    with response:
        return len(response.content)


def test_one_connection_moves_at_most_its_cap_both_ways(start: Start) -> None:
    capped = start("--stream-mib-per-s", "2")
    dbx = connected(capped)
    up = timed(dbx.files_upload, DATA, "/capped.bin")  # 4 MiB at 2 MiB/s: ~2 s
    assert 1.5 <= up < 8, up
    down = timed(download, dbx, "/capped.bin")
    assert 1.5 <= down < 8, down
    stats = capped.stats()
    assert stats["bytes_in"] >= len(DATA) and stats["bytes_out"] >= len(DATA)


def test_a_chunked_request_body_is_capped_too(start: Start) -> None:
    """Bodies without a Content-Length (Transfer-Encoding: chunked) are read paced as well."""
    capped = start("--stream-mib-per-s", "2")
    token = capped.token()["access_token"]
    headers = {
        "Authorization": f"Bearer {token}",
        "Content-Type": "application/octet-stream",
        "Dropbox-API-Arg": json.dumps({"path": "/chunked.bin"}),
    }
    pieces = (DATA[i : i + 256 * 1024] for i in range(0, len(DATA), 256 * 1024))
    with requests.Session() as http:
        http.post(f"{capped.url}/2/check/user", json={}, headers=headers, timeout=30)
        started = time.monotonic()
        reply = http.post(
            f"{capped.url}/2/files/upload",
            data=pieces,  # a generator: requests sends it chunked
            headers=headers,
            timeout=60,
            verify=capped.ca_bundle,
        )
        elapsed = time.monotonic() - started
    assert reply.status_code == 200, reply.text
    assert reply.json()["size"] == len(DATA)
    assert 1.5 <= elapsed < 8, elapsed


def test_a_download_arrives_smoothly_not_in_bursts(start: Start) -> None:
    capped = start("--stream-mib-per-s", "2")
    """At every moment the bytes received stay near rate x time: a bucket refilled once a
    second would hand out its 2 MiB at once."""
    dbx = connected(capped)
    dbx.files_upload(DATA, "/smooth.bin")
    _, response = dbx.files_download("/smooth.bin")
    samples = []
    with response:
        started = time.monotonic()
        received = 0
        for block in response.iter_content(64 * 1024):
            received += len(block)
            samples.append((time.monotonic() - started, received))
    assert received == len(DATA)
    rate = 2 * MIB
    # The headers came with the first quantum (~41 KiB); allow 8 quanta of slack.
    for elapsed, got in samples:
        assert got <= rate * elapsed + 8 * 41 * 1024, (elapsed, got)
    assert samples[-1][0] >= 1.5


def test_each_connection_gets_its_own_cap(start: Start) -> None:
    capped = start("--stream-mib-per-s", "2")
    clients = [connected(capped) for _ in range(3)]
    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        started = time.monotonic()
        futures = [
            pool.submit(timed, dbx.files_upload, DATA, f"/own-{i}.bin")
            for i, dbx in enumerate(clients)
        ]
        each = [future.result(timeout=60) for future in futures]
        together = time.monotonic() - started
    assert all(t >= 1.5 for t in each), each  # none is faster than its cap
    # 12 MiB over three 2 MiB/s connections: ~2 s, where one connection would need ~6 s.
    assert together < 4.5, together


def test_the_total_cap_holds_across_connections(start: Start) -> None:
    capped = start("--total-mib-per-s", "3")
    clients = [connected(capped) for _ in range(4)]
    clients[0].files_upload(DATA, "/total-down.bin")  # 4 MiB: ~1.3 s alone
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        started = time.monotonic()
        futures = [
            pool.submit(clients[i].files_upload, DATA, f"/total-{i}.bin") for i in range(3)
        ]
        futures.append(pool.submit(download, clients[3], "/total-down.bin"))
        for future in futures:
            future.result(timeout=60)
        together = time.monotonic() - started
    # 16 MiB, up and down, through one 3 MiB/s budget: ~5.3 s.
    assert 4.5 <= together < 20, together


def test_caps_change_live_and_follow_the_time_scale(start: Start) -> None:
    capped = start()
    dbx = connected(capped)
    assert timed(dbx.files_upload, DATA, "/fast.bin") < 1.5  # no cap: loopback speed
    view = capped.config(stream_mib_per_s=2)
    assert view["stream_mib_per_s"] == 2 and view["total_mib_per_s"] is None
    assert timed(dbx.files_upload, DATA, "/live.bin") >= 1.5  # the open connection too
    # A cap is a rate: time scale 0.25 makes every added delay 4x shorter, so 8 MiB/s.
    capped.config(time_scale=0.25)
    assert timed(dbx.files_upload, DATA, "/scaled.bin") < 1.5
    capped.config(time_scale=1, stream_mib_per_s=0)  # 0 = no cap, as for the other budgets
    assert capped.config()["stream_mib_per_s"] is None
    assert timed(dbx.files_upload, DATA, "/uncapped.bin") < 1.5


def test_the_dropbox_profile_has_a_sourced_stream_cap(emulator: EmulatorProcess) -> None:
    try:
        view = emulator.config(profile="dropbox")
        assert view["stream_mib_per_s"] == 12.0 and view["total_mib_per_s"] is None
        sources = emulator.control("GET", "realism")["sources"]
        assert "estimate" in sources["stream_mib_per_s"]
        assert "rclone#1783" in sources["stream_mib_per_s"]
    finally:
        emulator.config(profile=None)
    assert emulator.config()["stream_mib_per_s"] is None
