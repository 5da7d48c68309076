"""`dvc push` of small files in packs (issue 17 item 1): `upload_session/start_batch`, one
`upload_session/append_batch` per pack, then the batch committer's `finish_batch_v2`.

Through the real `dvc` CLI against the emulator, counting requests per route: a 1,200-file push
costs a handful of requests; one entry refused in a pack goes again alone; a pack refused or lost
as a whole is sent again; an account that refuses the batch routes falls back to one session per
file; `pack false` and `batch_size 1` keep that path. After each push every remote object's
content is the one its md5 name says (its `content_hash` is that of the local file of that md5).
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dvc_dropbox.transfer import content_hash
from tests.helpers.emulator import EmulatorProcess, sdk_client
from tests.integration.plugin.cli import dvc, make_repo, md5_object, remote_files

START_BATCH = "files/upload_session/start_batch"
APPEND_BATCH = "files/upload_session/append_batch"
START = "files/upload_session/start"
APPEND = "files/upload_session/append_v2"
FINISH_BATCH = "files/upload_session/finish_batch_v2"
FINISH = "files/upload_session/finish"
JOBS = 8


@pytest.fixture
def emu(monkeypatch: pytest.MonkeyPatch) -> Iterator[EmulatorProcess]:
    with EmulatorProcess(echo_stderr=False) as emulator:
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", emulator.ca_bundle)  # for the in-process SDK
        yield emulator


class Repo:
    def __init__(self, tmp_path: Path, emu: EmulatorProcess, count: int):
        self.emu = emu
        self.env = emu.isolated_env(tmp_path / "home", emu.token())
        self.path = make_repo(tmp_path / "repo", self.env)
        data = self.path / "data"
        data.mkdir()
        self.contents: dict[str, bytes] = {}
        for i in range(count):
            content = hashlib.sha256(f"{uuid.uuid4()}-{i}".encode()).digest()[:16]
            (data / f"f{i:05}").write_bytes(content)
            self.contents[md5_object(content)] = content
        self.dvc("add", "-q", "data")
        self.folder = f"packs-{uuid.uuid4().hex[:8]}"
        self.dvc("remote", "add", "-d", "r", f"dropbox://{self.folder}")

    def dvc(self, *args: str, check: bool = True) -> Any:
        return dvc(self.path, self.env, *args, check=check)

    def push(self, *args: str, check: bool = True) -> tuple[Any, dict[str, int]]:
        before = self.emu.stats()["requests"]
        proc = self.dvc("push", "-j", str(JOBS), *args, check=check)
        after = self.emu.stats()["requests"]
        routes = {r: int(after[r] - before.get(r, 0)) for r in after if after[r] != before.get(r)}
        return proc, routes

    def assert_remote_complete(self) -> None:
        """Every object is there, and holds the bytes its md5 name says."""
        stored = remote_files(sdk_client(self.emu), f"/{self.folder}")
        objects = {name: meta for name, meta in stored.items() if not name.endswith(".dir")}
        assert set(objects) == set(self.contents), len(objects)
        for name, meta in objects.items():
            assert meta.content_hash == content_hash(self.contents[name]), name
        assert sum(name.endswith(".dir") for name in stored) == 1


def test_a_push_of_1200_small_files_is_a_handful_of_requests(
    tmp_path: Path, emu: EmulatorProcess
) -> None:
    repo = Repo(tmp_path, emu, 1200)
    proc, routes = repo.push()
    assert "1201 files pushed" in proc.stdout + proc.stderr, proc.stdout + proc.stderr
    assert 1 <= routes.get(START_BATCH, 0) <= 2, routes
    assert 3 <= routes.get(APPEND_BATCH, 0) <= 3, routes  # 500 + 500 + 200
    assert routes.get(FINISH_BATCH, 0) <= 3, routes
    # The .dir listing comes alone, after every data file: one start (one request, not two).
    assert routes.get(START, 0) <= 1, routes
    assert routes.get(APPEND, 0) == routes.get(FINISH, 0) == 0, routes
    repo.assert_remote_complete()


def test_one_entry_refused_in_a_pack_goes_again_alone(tmp_path: Path, emu: EmulatorProcess) -> None:
    count = 100
    repo = Repo(tmp_path, emu, count)
    # Its session is "not found": that entry's bytes are not appended, the others' are.
    emu.fault(route=APPEND_BATCH, entry_failure="not_found", times=1)
    proc, routes = repo.push()
    assert f"{count + 1} files pushed" in proc.stdout + proc.stderr, proc.stdout + proc.stderr
    assert emu.faults() == []
    # One pack (never sent again as a whole); the refused file alone in a new session of its
    # own (one request), and the .dir listing.
    assert routes.get(START_BATCH, 0) == 1, routes
    assert routes.get(APPEND_BATCH, 0) == 1, routes
    assert routes.get(START, 0) == 2, routes
    repo.assert_remote_complete()


@pytest.mark.parametrize(
    "fault",
    [
        pytest.param({"status": 503}, id="5xx"),
        pytest.param({"drop_connection": True}, id="connection-dropped"),
        pytest.param({"drop_connection": "after_processing"}, id="answer-lost"),
    ],
)
def test_a_pack_failed_as_a_whole_is_sent_again_from_its_sessions(
    tmp_path: Path, emu: EmulatorProcess, fault: dict[str, Any]
) -> None:
    count = 100
    repo = Repo(tmp_path, emu, count)
    emu.fault(route=APPEND_BATCH, times=1, **fault)
    proc, routes = repo.push()
    assert f"{count + 1} files pushed" in proc.stdout + proc.stderr, proc.stdout + proc.stderr
    assert emu.faults() == []
    # The same sessions (no second start_batch), the same pack again; no file alone but the .dir.
    assert routes.get(START_BATCH, 0) == 1, routes
    assert routes.get(APPEND_BATCH, 0) == 2, routes
    assert routes.get(START, 0) == 1, routes
    repo.assert_remote_complete()


@pytest.mark.parametrize("route", [START_BATCH, APPEND_BATCH])
def test_an_account_refusing_the_batch_routes_falls_back_to_one_session_per_file(
    tmp_path: Path, emu: EmulatorProcess, route: str
) -> None:
    count = 60
    repo = Repo(tmp_path, emu, count)
    # As Dropbox answers a route it does not serve this app or account, every time.
    emu.fault(route=route, unknown_route=True, times=100)
    proc, routes = repo.push("-v")
    output = proc.stdout + proc.stderr
    assert f"{count + 1} files pushed" in output, output
    # Asked once, then never again this run: every file in its own session.
    assert routes.get(route, 0) == 1, routes
    assert routes.get(APPEND_BATCH, 0) <= 1, routes
    assert routes.get(START, 0) == count + 1, routes
    assert routes.get(FINISH_BATCH, 0) <= 3, routes
    assert output.count(f"Dropbox refused {route.removeprefix('files/')}") == 1, output
    assert "Traceback" not in output
    repo.assert_remote_complete()


@pytest.mark.parametrize(
    "option", [pytest.param(("pack", "false"), id="pack-false"), ("batch_size", "1")]
)
def test_pack_false_and_batch_size_1_keep_one_session_per_file(
    tmp_path: Path, emu: EmulatorProcess, option: tuple[str, str]
) -> None:
    count = 40
    repo = Repo(tmp_path, emu, count)
    repo.dvc("remote", "modify", "r", *option)
    proc, routes = repo.push()
    assert f"{count + 1} files pushed" in proc.stdout + proc.stderr, proc.stdout + proc.stderr
    assert routes.get(START_BATCH, 0) == routes.get(APPEND_BATCH, 0) == 0, routes
    assert routes.get(START, 0) == count + 1, routes
    if option[0] == "batch_size":
        assert routes.get(FINISH, 0) == count + 1, routes
    else:
        assert routes.get(FINISH_BATCH, 0) >= 1, routes
    repo.assert_remote_complete()
