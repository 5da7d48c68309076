"""The control API and the realism knobs: tokens, faults, stats, config, reset, write locks,
rate limits."""

from __future__ import annotations

import concurrent.futures
import datetime
import json
from collections.abc import Iterator
from typing import Any

import dropbox
import pytest
import requests
from dropbox import exceptions, files

from tests.helpers.content_hash import content_hash
from tests.helpers.emulator import EmulatorProcess, sdk_client

ALL_READ_WRITE = {
    "account_info.read",
    "files.metadata.read",
    "files.metadata.write",
    "files.content.read",
    "files.content.write",
}


@pytest.fixture
def faults(emulator: EmulatorProcess) -> Iterator[EmulatorProcess]:
    """The session emulator, with every fault cleared afterwards."""
    yield emulator
    emulator.control("DELETE", "faults")


def control_raw(emu: EmulatorProcess, method: str, path: str, payload: Any) -> requests.Response:
    return requests.request(
        method,
        f"{emu.ready['control_url']}/{path}",
        data=payload if isinstance(payload, (str, bytes)) else json.dumps(payload),
        verify=emu.ca_bundle,
        timeout=60,
    )


# -- tokens --------------------------------------------------------------------------------------


def test_token_shape(emulator: EmulatorProcess) -> None:
    issued = emulator.token(ttl=120)
    assert issued["access_token"] and issued["refresh_token"]
    assert len(issued["account_id"]) == 40 and issued["account_id"].startswith("dbid:")
    expires = datetime.datetime.strptime(issued["expires_at"], "%Y-%m-%dT%H:%M:%SZ")
    left = expires - datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
    assert datetime.timedelta(seconds=100) < left <= datetime.timedelta(seconds=121)
    assert set(issued["scope"].split()) >= ALL_READ_WRITE
    account = sdk_client(emulator).users_get_current_account()
    assert account.account_id == issued["account_id"]


@pytest.mark.parametrize(
    "payload",
    [{"app_key": "unknown-app"}, {"scopes": ["no.such.scope"]}, {"ttl": -1}, {"colour": 1}, [1]],
)
def test_token_request_errors(emulator: EmulatorProcess, payload: Any) -> None:
    resp = control_raw(emulator, "POST", "tokens", payload)
    assert resp.status_code == 400
    assert "error" in resp.json()


def test_expire_without_refresh_token(emulator: EmulatorProcess) -> None:
    issued = emulator.token()
    dbx = dropbox.Dropbox(oauth2_access_token=issued["access_token"], max_retries_on_error=0)
    assert dbx.check_user("a").result == "a"
    emulator.control("POST", "tokens/expire", {"access_token": issued["access_token"]})
    with pytest.raises(exceptions.AuthError) as err:
        dbx.check_user("b")
    assert err.value.error.is_expired_access_token()


def test_expired_token_is_refreshed_by_sdk(emulator: EmulatorProcess) -> None:
    issued = emulator.token()
    far = datetime.datetime.utcnow() + datetime.timedelta(hours=3)
    dbx = dropbox.Dropbox(
        oauth2_access_token=issued["access_token"],
        oauth2_refresh_token=issued["refresh_token"],
        oauth2_access_token_expiration=far,
        app_key=emulator.env["DROPBOX_APP_KEY"],
        max_retries_on_error=0,
    )
    refreshes = emulator.stats()["requests"].get("oauth2/token", 0)
    emulator.control("POST", "tokens/expire", {"access_token": issued["access_token"]})
    assert dbx.check_user("after expiry").result == "after expiry"
    assert dbx._oauth2_access_token != issued["access_token"]
    assert emulator.stats()["requests"]["oauth2/token"] == refreshes + 1


def test_expiry_during_a_big_upload_is_refreshed(emulator: EmulatorProcess) -> None:
    # The 401 must arrive as a response (not a reset) even though the body is large and unused.
    issued = emulator.token()
    far = datetime.datetime.utcnow() + datetime.timedelta(hours=3)
    dbx = dropbox.Dropbox(
        oauth2_access_token=issued["access_token"],
        oauth2_refresh_token=issued["refresh_token"],
        oauth2_access_token_expiration=far,
        app_key=emulator.env["DROPBOX_APP_KEY"],
        max_retries_on_error=0,
    )
    emulator.control("POST", "tokens/expire", {"access_token": issued["access_token"]})
    data = b"\x5a" * (24 * 1024 * 1024)
    session = dbx.files_upload_session_start(data, close=True)
    meta = dbx.files_upload_session_finish(
        b"",
        files.UploadSessionCursor(session.session_id, len(data)),
        files.CommitInfo("/control/big-after-expiry.bin", mode=files.WriteMode.overwrite),
    )
    assert meta.content_hash == content_hash(data)


def test_revoked_refresh_token(emulator: EmulatorProcess) -> None:
    issued = emulator.token()
    emulator.control("POST", "tokens/revoke", {"refresh_token": issued["refresh_token"]})
    # Its access tokens die with it ...
    plain = dropbox.Dropbox(oauth2_access_token=issued["access_token"], max_retries_on_error=0)
    with pytest.raises(exceptions.AuthError) as err:
        plain.check_user()
    assert err.value.error.is_invalid_access_token()
    # ... and refreshing answers invalid_grant, which the SDK raises as AuthError.
    dbx = dropbox.Dropbox(
        oauth2_refresh_token=issued["refresh_token"],
        app_key=emulator.env["DROPBOX_APP_KEY"],
        max_retries_on_error=0,
    )
    with pytest.raises(exceptions.AuthError) as err:
        dbx.check_user()
    assert err.value.error.is_invalid_access_token()
    resp = control_raw(emulator, "POST", "tokens/revoke", {"refresh_token": "never-issued"})
    assert resp.status_code == 400


def test_expire_unknown_token(emulator: EmulatorProcess) -> None:
    resp = control_raw(emulator, "POST", "tokens/expire", {"access_token": "sl.nope"})
    assert resp.status_code == 400


# -- faults --------------------------------------------------------------------------------------


def test_fault_429_rate_limit(faults: EmulatorProcess, sdk_client: Any) -> None:
    faults.control(
        "POST",
        "faults",
        {"route": "check/user", "times": 1, "status": 429, "retry_after": 7},
    )
    with pytest.raises(exceptions.RateLimitError) as err:
        sdk_client.check_user("x")
    assert err.value.backoff == 7
    assert err.value.error.reason.is_too_many_requests()
    assert sdk_client.check_user("y").result == "y"  # used up


def test_fault_429_write_operations_with_header(faults: EmulatorProcess) -> None:
    faults.control(
        "POST",
        "faults",
        {"route": "check/*", "status": 429, "reason": "too_many_write_operations"},
    )
    token = faults.token()["access_token"]
    resp = requests.post(
        f"{faults.url}/2/check/user",
        data=b"{}",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        verify=faults.ca_bundle,
        timeout=60,
    )
    assert resp.status_code == 429
    assert resp.headers["Content-Type"] == "application/json"
    assert resp.headers["Retry-After"] == "1"
    body = resp.json()
    assert body["error"] == {"reason": {".tag": "too_many_write_operations"}, "retry_after": 1}
    assert body["error_summary"].startswith("too_many_write_operations/")


def test_sdk_retries_through_429(faults: EmulatorProcess) -> None:
    faults.control(
        "POST", "faults", {"route": "check/user", "times": 2, "status": 429, "retry_after": 0}
    )
    token = faults.token()["access_token"]
    dbx = dropbox.Dropbox(oauth2_access_token=token, max_retries_on_rate_limit=3)
    before = faults.stats()["requests"].get("check/user", 0)
    assert dbx.check_user("eventually").result == "eventually"
    assert faults.stats()["requests"]["check/user"] == before + 3


@pytest.mark.parametrize("status", [500, 503])
def test_fault_server_errors(faults: EmulatorProcess, sdk_client: Any, status: int) -> None:
    faults.control("POST", "faults", {"route": "files/get_metadata", "status": status})
    with pytest.raises(exceptions.InternalServerError) as err:
        sdk_client.files_get_metadata("/whatever")
    assert err.value.status_code == status


def test_fault_glob_matches_versioned_routes(faults: EmulatorProcess, sdk_client: Any) -> None:
    session = sdk_client.files_upload_session_start(b"abc")
    faults.control("POST", "faults", {"route": "files/upload_session/*", "status": 500})
    cursor = files.UploadSessionCursor(session.session_id, 3)
    with pytest.raises(exceptions.InternalServerError):
        sdk_client.files_upload_session_append_v2(b"def", cursor)
    # The key form (":2") matches too.
    faults.control("POST", "faults", {"route": "files/upload_session/append:2", "status": 503})
    with pytest.raises(exceptions.InternalServerError):
        sdk_client.files_upload_session_append_v2(b"def", cursor)
    sdk_client.files_upload_session_append_v2(b"def", cursor)  # faults used up


def test_fault_drop_connection(faults: EmulatorProcess, sdk_client: Any) -> None:
    faults.control("POST", "faults", {"route": "check/user", "drop_connection": True})
    with pytest.raises(requests.exceptions.ConnectionError):
        sdk_client.check_user()
    assert sdk_client.check_user("back").result == "back"


def test_fault_drop_upload_after_bytes(faults: EmulatorProcess, sdk_client: Any) -> None:
    before = faults.stats()["bytes_in"]
    faults.control(
        "POST",
        "faults",
        {"route": "files/upload", "drop_connection": True, "after_bytes": 1000},
    )
    with pytest.raises(requests.exceptions.ConnectionError):
        sdk_client.files_upload(b"z" * 100_000, "/control/dropped.bin")
    taken = faults.stats()["bytes_in"] - before
    assert 1000 <= taken < 100_000
    with pytest.raises(exceptions.ApiError):
        sdk_client.files_get_metadata("/control/dropped.bin")  # nothing was committed


def test_fault_drop_download_after_bytes(faults: EmulatorProcess, sdk_client: Any) -> None:
    data = bytes(range(256)) * 1000
    sdk_client.files_upload(data, "/control/cut.bin", mode=files.WriteMode.overwrite)
    faults.control(
        "POST",
        "faults",
        {"route": "files/download", "drop_connection": True, "after_bytes": 5000},
    )
    meta, resp = sdk_client.files_download("/control/cut.bin")
    assert meta.size == len(data)
    with pytest.raises(requests.exceptions.RequestException):
        resp.content  # noqa: B018  (reading is what fails)


def test_fault_corrupt_body(faults: EmulatorProcess, sdk_client: Any) -> None:
    data = b"0123456789" * 1000
    sdk_client.files_upload(data, "/control/corrupt.bin", mode=files.WriteMode.overwrite)
    faults.control("POST", "faults", {"route": "files/download", "corrupt_body": True})
    meta, resp = sdk_client.files_download("/control/corrupt.bin")
    got = resp.content
    assert meta.content_hash == content_hash(data)  # the true metadata
    assert len(got) == len(data)
    assert sum(a != b for a, b in zip(got, data)) == 1
    _, resp = sdk_client.files_download("/control/corrupt.bin")
    assert resp.content == data


def _finish_entries(client: Any, folder: str, count: int) -> list[files.UploadSessionFinishArg]:
    entries = []
    for i in range(count):
        data = f"entry {i}".encode()
        session = client.files_upload_session_start(data, close=True)
        entries.append(
            files.UploadSessionFinishArg(
                cursor=files.UploadSessionCursor(session.session_id, len(data)),
                commit=files.CommitInfo(f"{folder}/{i}.txt", mode=files.WriteMode.overwrite),
            )
        )
    return entries


def test_fault_entry_failure_in_finish_batch(faults: EmulatorProcess, sdk_client: Any) -> None:
    entries = _finish_entries(sdk_client, "/control/entry-faults", 4)
    faults.control(
        "POST",
        "faults",
        {
            "route": "files/upload_session/finish_batch_v2",
            "entry_failure": "too_many_write_operations",
            "times": 3,
        },
    )
    armed = faults.control("GET", "faults")["faults"]
    assert [f["entry_failure"] for f in armed] == ["too_many_write_operations"]
    # Other routes are not failed by an entry fault.
    assert sdk_client.check_user("fine").result == "fine"

    # The first call uses up 2 of the 3 entry failures.
    first = sdk_client.files_upload_session_finish_batch_v2(entries[:2]).entries
    assert [e.is_failure() for e in first] == [True, True]
    assert all(e.get_failure().is_too_many_write_operations() for e in first)
    # Counted across calls: the next entry fails too, the rest of that batch commits.
    second = sdk_client.files_upload_session_finish_batch_v2(entries).entries
    assert [e.is_failure() for e in second] == [True, False, False, False]
    assert second[3].get_success().path_display == "/control/entry-faults/3.txt"
    assert faults.control("GET", "faults") == {"faults": []}
    # A failed entry stayed uncommitted with its session open: committing it again works.
    with pytest.raises(exceptions.ApiError):
        sdk_client.files_get_metadata("/control/entry-faults/0.txt")
    again = sdk_client.files_upload_session_finish_batch_v2(entries[:1]).entries
    assert again[0].get_success().size == len(b"entry 0")


def test_fault_entry_failure_wire_format(faults: EmulatorProcess, sdk_client: Any) -> None:
    (entry,) = _finish_entries(sdk_client, "/control/entry-wire", 1)
    faults.control(
        "POST",
        "faults",
        {
            "route": "files/upload_session/finish_batch*",
            "entry_failure": "too_many_write_operations",
        },
    )
    token = faults.token()["access_token"]
    arg = {
        "entries": [
            {
                "cursor": {"session_id": entry.cursor.session_id, "offset": entry.cursor.offset},
                "commit": {"path": entry.commit.path},
            }
        ]
    }
    resp = requests.post(
        f"{faults.url}/2/files/upload_session/finish_batch_v2",
        data=json.dumps(arg),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        verify=faults.ca_bundle,
        timeout=60,
    )
    assert resp.status_code == 200
    assert resp.json() == {
        "entries": [{".tag": "failure", "failure": {".tag": "too_many_write_operations"}}]
    }


def test_fault_on_token_endpoint(faults: EmulatorProcess) -> None:
    issued = faults.token()
    faults.control("POST", "faults", {"route": "oauth2/token", "status": 503})
    dbx = dropbox.Dropbox(
        oauth2_refresh_token=issued["refresh_token"],
        app_key=faults.env["DROPBOX_APP_KEY"],
        max_retries_on_error=0,
    )
    with pytest.raises(exceptions.InternalServerError):
        dbx.check_user()
    assert dbx.check_user("ok").result == "ok"


@pytest.mark.parametrize(
    "spec",
    [
        {"times": 1},
        {"route": "x", "status": 404},
        {"route": "x", "times": 0},
        {"route": "x", "reason": "bored"},
        {"route": "x", "after_bytes": 5},
        {"route": "x", "colour": "red"},
        {"route": "x", "drop_connection": "yes"},
        {"route": "x", "entry_failure": "bored"},
        {"route": "x", "entry_failure": "too_many_write_operations", "status": 500},
        {"route": "x", "entry_failure": "too_many_write_operations", "drop_connection": True},
    ],
)
def test_bad_fault_specs(faults: EmulatorProcess, spec: dict[str, Any]) -> None:
    resp = control_raw(faults, "POST", "faults", spec)
    assert resp.status_code == 400
    assert faults.control("GET", "faults") == {"faults": []}


def test_delete_faults(faults: EmulatorProcess, sdk_client: Any) -> None:
    faults.control("POST", "faults", [{"route": "check/user", "times": 5, "status": 500}])
    assert len(faults.control("GET", "faults")["faults"]) == 1
    faults.control("DELETE", "faults")
    assert sdk_client.check_user("fine").result == "fine"


# -- stats, config, reset ------------------------------------------------------------------------


def test_stats_count_requests_bytes_and_commits(emulator: EmulatorProcess, sdk_client: Any) -> None:
    before = emulator.stats()
    sdk_client.files_upload(b"s" * 1234, "/control/stats.bin", mode=files.WriteMode.overwrite)
    _, resp = sdk_client.files_download("/control/stats.bin")
    assert resp.content == b"s" * 1234
    after = emulator.stats()
    assert set(after) == {"requests", "commits", "bytes_in", "bytes_out"}
    assert after["requests"]["files/upload"] == before["requests"].get("files/upload", 0) + 1
    assert after["requests"]["files/download"] == before["requests"].get("files/download", 0) + 1
    assert after["bytes_in"] - before["bytes_in"] >= 1234
    assert after["bytes_out"] - before["bytes_out"] >= 1234
    assert after["commits"] >= before["commits"] + 1


def test_config_round_trip(emulator: EmulatorProcess) -> None:
    original = emulator.control("GET", "config")
    try:
        changed = emulator.control(
            "POST", "config", {"commit_ms": 5, "quota_bytes": 10**9, "rate_limit_per_s": 100}
        )
        assert changed["commit_ms"] == 5 and changed["quota_bytes"] == 10**9
        assert emulator.control("GET", "config")["rate_limit_per_s"] == 100
    finally:
        emulator.control(
            "POST",
            "config",
            {k: original[k] for k in ("commit_ms", "quota_bytes", "rate_limit_per_s")},
        )
    for bad in ({"latency_ms": -1}, {"latency_ms": "fast"}, {"port": 1}, {"commit_ms": None}):
        assert control_raw(emulator, "POST", "config", bad).status_code == 400
    assert emulator.control("GET", "config") == original


def test_control_errors(emulator: EmulatorProcess) -> None:
    assert control_raw(emulator, "POST", "tokens", b"{not json").status_code == 400
    assert control_raw(emulator, "GET", "nowhere", None).status_code == 404
    assert control_raw(emulator, "PUT", "stats", None).status_code == 405
    info = emulator.control("GET", "")
    assert info["url"] == emulator.url and info["app_keys"]


def test_rate_limit(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    with EmulatorProcess("--rate-limit-per-s", "2") as emu:
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", emu.ca_bundle)
        dbx = sdk_client(emu)
        outcomes = []
        for i in range(8):  # a burst far above 2/s
            try:
                dbx.check_user(str(i))
                outcomes.append("ok")
            except exceptions.RateLimitError as exc:
                assert exc.error.reason.is_too_many_requests()
                assert exc.backoff >= 1
                outcomes.append("429")
        assert "ok" in outcomes and "429" in outcomes
        # Per token: a fresh token has its own budget.
        assert sdk_client(emu).check_user("fresh").result == "fresh"
        emu.control("POST", "config", {"rate_limit_per_s": None})
        assert all(dbx.check_user(str(i)).result == str(i) for i in range(5))


def test_reset_keeps_tokens(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    with EmulatorProcess() as emu:
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", emu.ca_bundle)
        dbx = sdk_client(emu)
        dbx.files_upload(b"gone soon", "/reset/me.txt")
        emu.control("POST", "faults", {"route": "nothing/*", "times": 3})
        emu.control("POST", "reset")
        assert emu.stats() == {"requests": {}, "commits": 0, "bytes_in": 0, "bytes_out": 0}
        assert emu.control("GET", "faults") == {"faults": []}
        with pytest.raises(exceptions.ApiError) as err:
            dbx.files_get_metadata("/reset/me.txt")  # same token still works
        assert err.value.error.get_path().is_not_found()


# -- the write lock ------------------------------------------------------------------------------


@pytest.fixture
def slow_commits(monkeypatch: pytest.MonkeyPatch) -> Iterator[EmulatorProcess]:
    with EmulatorProcess("--commit-ms", "50") as emu:
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", emu.ca_bundle)
        yield emu


def test_parallel_single_uploads_hit_the_write_lock(slow_commits: EmulatorProcess) -> None:
    clients = [sdk_client(slow_commits) for _ in range(8)]
    for client in clients:
        client.check_user()  # connections and handshakes first, so the uploads start together

    def upload(i: int, attempt: int) -> str:
        try:
            clients[i].files_upload(f"file {i}".encode(), f"/locks/single-{attempt}-{i}.txt")
        except exceptions.RateLimitError as exc:
            assert exc.error.reason.is_too_many_write_operations()
            assert exc.backoff == 1
            return "429"
        return "ok"

    outcomes: list[str] = []
    # Up to three bursts: on a badly overloaded machine one burst might not overlap enough.
    for attempt in range(3):
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            outcomes = list(pool.map(upload, range(8), [attempt] * 8))
        if "429" in outcomes:
            break
    assert "429" in outcomes
    assert "ok" in outcomes


def test_one_batch_commit_takes_the_lock_once(slow_commits: EmulatorProcess) -> None:
    dbx = sdk_client(slow_commits)
    entries = []
    for i in range(8):
        data = f"batched {i}".encode()
        session = dbx.files_upload_session_start(data, close=True)
        entries.append(
            files.UploadSessionFinishArg(
                cursor=files.UploadSessionCursor(session.session_id, len(data)),
                commit=files.CommitInfo(path=f"/locks/batch-{i}.txt"),
            )
        )
    commits_before = slow_commits.stats()["commits"]
    result = dbx.files_upload_session_finish_batch_v2(entries)
    assert all(entry.is_success() for entry in result.entries)
    assert slow_commits.stats()["commits"] == commits_before + 1
