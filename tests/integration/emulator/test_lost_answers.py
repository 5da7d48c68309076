"""Lost answers: `"drop_connection": "after_processing"` runs the call, then cuts the connection
without one byte of answer. Through the official SDK: the call raises a connection error, the
change landed anyway, and a retry meets what a retry after a lost answer meets on Dropbox."""

from __future__ import annotations

import http.client
import json
import uuid
from collections.abc import Iterator
from typing import Any

import dropbox
import pytest
import requests
from dropbox import files, oauth
from dropbox.exceptions import ApiError

from tests.helpers.content_hash import content_hash
from tests.helpers.emulator import EmulatorProcess
from tests.integration.emulator.test_oauth import SCOPES, approve, code_on, token_request

LOST = {"drop_connection": "after_processing"}


@pytest.fixture
def faults(emulator: EmulatorProcess) -> Iterator[EmulatorProcess]:
    """The session emulator, with every fault cleared afterwards."""
    yield emulator
    emulator.clear_faults()


@pytest.fixture
def base(sdk_client: Any) -> str:
    return f"/lost-{uuid.uuid4().hex[:10]}"


def lose(emu: EmulatorProcess, route: str, **fields: Any) -> None:
    emu.fault(route=route, **LOST, **fields)


def assert_cut(excinfo: pytest.ExceptionInfo[BaseException]) -> None:
    """A connection error with no response behind it: the server hung up before answering
    (not an empty 200, not an HTTP error)."""
    error = excinfo.value
    assert isinstance(error, requests.exceptions.ConnectionError), repr(error)
    assert error.response is None
    chain: list[BaseException] = []
    cause: BaseException | None = error
    while cause is not None and len(chain) < 10:
        chain.append(cause)
        args = getattr(cause, "args", ())
        nested = [a for a in args if isinstance(a, BaseException)]
        cause = nested[0] if nested else (cause.__cause__ or cause.__context__)
    assert any(
        isinstance(c, (http.client.RemoteDisconnected, ConnectionResetError)) for c in chain
    ), [repr(c) for c in chain]


def control_raw(emu: EmulatorProcess, method: str, path: str, payload: Any) -> requests.Response:
    """The control API's raw answer (the helper's `fault()` raises on a 400)."""
    return requests.request(
        method,
        f"{emu.ready['control_url']}/{path}",
        data=json.dumps(payload),
        verify=emu.ca_bundle,
        timeout=60,
    )


def requests_of(emu: EmulatorProcess, route: str) -> int:
    return int(emu.stats()["requests"].get(route, 0))


def cursor(session_id: str, offset: int) -> files.UploadSessionCursor:
    return files.UploadSessionCursor(session_id=session_id, offset=offset)


# -- upload sessions -----------------------------------------------------------------------------


def test_append_answer_lost_offset_advanced(
    faults: EmulatorProcess, sdk_client: Any, base: str
) -> None:
    first, second = b"a" * 1000, b"b" * 2000
    sid = sdk_client.files_upload_session_start(first).session_id
    lose(faults, "files/upload_session/append_v2")
    with pytest.raises(requests.exceptions.ConnectionError) as excinfo:
        sdk_client.files_upload_session_append_v2(second, cursor(sid, 1000))
    assert_cut(excinfo)
    assert faults.faults() == []
    # The retry of the same append: the bytes are already in, Dropbox names the offset.
    with pytest.raises(ApiError) as retried:
        sdk_client.files_upload_session_append_v2(second, cursor(sid, 1000))
    error = retried.value.error
    assert error.is_incorrect_offset(), error
    assert error.get_incorrect_offset().correct_offset == 3000
    md = sdk_client.files_upload_session_finish(
        b"", cursor(sid, 3000), files.CommitInfo(f"{base}/appended.bin")
    )
    assert md.size == 3000 and md.content_hash == content_hash(first + second)  # in once


def test_start_answer_lost_commits_nothing(
    faults: EmulatorProcess, sdk_client: Any, base: str
) -> None:
    starts = requests_of(faults, "files/upload_session/start")
    bytes_in = faults.stats()["bytes_in"]
    lose(faults, "files/upload_session/start")
    with pytest.raises(requests.exceptions.ConnectionError) as excinfo:
        sdk_client.files_upload_session_start(b"lost session " * 100)
    assert_cut(excinfo)
    stats = faults.stats()
    assert stats["requests"]["files/upload_session/start"] == starts + 1
    assert stats["bytes_in"] - bytes_in >= len(b"lost session " * 100)  # it was read in full
    # A new start is just another session; the first one's bytes go nowhere.
    sid = sdk_client.files_upload_session_start(b"kept").session_id
    sdk_client.files_upload_session_finish(b"", cursor(sid, 4), files.CommitInfo(f"{base}/kept"))
    listing = sdk_client.files_list_folder(base).entries
    assert [(e.name, e.size) for e in listing] == [("kept", 4)]
    _, resp = sdk_client.files_download(f"{base}/kept")
    assert resp.content == b"kept"


def test_finish_batch_answer_lost_files_committed(
    faults: EmulatorProcess, sdk_client: Any, base: str
) -> None:
    datas = [f"batch entry {i}".encode() for i in range(3)]
    entries = []
    for i, data in enumerate(datas):
        sid = sdk_client.files_upload_session_start(data, close=True).session_id
        entries.append(
            files.UploadSessionFinishArg(cursor(sid, len(data)), files.CommitInfo(f"{base}/{i}"))
        )
    commits = faults.stats()["commits"]
    lose(faults, "files/upload_session/finish_batch_v2")
    with pytest.raises(requests.exceptions.ConnectionError) as excinfo:
        sdk_client.files_upload_session_finish_batch_v2(entries)
    assert_cut(excinfo)
    assert faults.stats()["commits"] == commits + 1  # it landed, as one commit
    for i, data in enumerate(datas):
        md = sdk_client.files_get_metadata(f"{base}/{i}")
        assert md.size == len(data) and md.content_hash == content_hash(data)
    # Retrying the batch: every session is used up, nothing is committed twice.
    retried = sdk_client.files_upload_session_finish_batch_v2(entries).entries
    assert all(entry.is_failure() for entry in retried), retried
    assert all(entry.get_failure().is_lookup_failed() for entry in retried), retried
    assert faults.stats()["commits"] == commits + 1


def test_finish_answer_lost_file_committed(
    faults: EmulatorProcess, sdk_client: Any, base: str
) -> None:
    sid = sdk_client.files_upload_session_start(b"head ").session_id
    lose(faults, "files/upload_session/finish")
    with pytest.raises(requests.exceptions.ConnectionError) as excinfo:
        sdk_client.files_upload_session_finish(
            b"tail", cursor(sid, 5), files.CommitInfo(f"{base}/finished")
        )
    assert_cut(excinfo)
    assert sdk_client.files_get_metadata(f"{base}/finished").size == 9
    with pytest.raises(ApiError) as retried:
        sdk_client.files_upload_session_finish(
            b"tail", cursor(sid, 5), files.CommitInfo(f"{base}/finished")
        )
    assert retried.value.error.is_lookup_failed(), retried.value.error


def test_upload_answer_lost_file_there(faults: EmulatorProcess, sdk_client: Any, base: str) -> None:
    data = b"uploaded once" * 50
    lose(faults, "files/upload")
    with pytest.raises(requests.exceptions.ConnectionError) as excinfo:
        sdk_client.files_upload(data, f"{base}/up.bin")
    assert_cut(excinfo)
    md = sdk_client.files_get_metadata(f"{base}/up.bin")
    assert md.content_hash == content_hash(data)
    # The same upload again (mode add, no autorename) conflicts with what landed.
    with pytest.raises(ApiError) as retried:
        sdk_client.files_upload(data + b"!", f"{base}/up.bin")
    error = retried.value.error
    assert error.is_path() and error.get_path().reason.is_conflict(), error


# -- RPC routes ----------------------------------------------------------------------------------


def test_delete_answer_lost_then_not_found(
    faults: EmulatorProcess, sdk_client: Any, base: str
) -> None:
    sdk_client.files_upload(b"doomed", f"{base}/doomed")
    lose(faults, "files/delete_v2")
    with pytest.raises(requests.exceptions.ConnectionError) as excinfo:
        sdk_client.files_delete_v2(f"{base}/doomed")
    assert_cut(excinfo)
    with pytest.raises(ApiError) as gone:
        sdk_client.files_get_metadata(f"{base}/doomed")
    assert gone.value.error.get_path().is_not_found()
    with pytest.raises(ApiError) as retried:
        sdk_client.files_delete_v2(f"{base}/doomed")
    error = retried.value.error
    assert error.is_path_lookup() and error.get_path_lookup().is_not_found(), error


def test_move_answer_lost_target_exists(
    faults: EmulatorProcess, sdk_client: Any, base: str
) -> None:
    sdk_client.files_upload(b"moving", f"{base}/from")
    lose(faults, "files/move_v2")
    with pytest.raises(requests.exceptions.ConnectionError) as excinfo:
        sdk_client.files_move_v2(f"{base}/from", f"{base}/to")
    assert_cut(excinfo)
    assert sdk_client.files_get_metadata(f"{base}/to").content_hash == content_hash(b"moving")
    with pytest.raises(ApiError) as retried:
        sdk_client.files_move_v2(f"{base}/from", f"{base}/to")
    error = retried.value.error
    assert error.is_from_lookup() and error.get_from_lookup().is_not_found(), error


def test_copy_answer_lost_target_exists(
    faults: EmulatorProcess, sdk_client: Any, base: str
) -> None:
    sdk_client.files_upload(b"copied", f"{base}/original")
    lose(faults, "files/copy_v2")
    with pytest.raises(requests.exceptions.ConnectionError) as excinfo:
        sdk_client.files_copy_v2(f"{base}/original", f"{base}/copy")
    assert_cut(excinfo)
    assert sdk_client.files_get_metadata(f"{base}/copy").content_hash == content_hash(b"copied")
    with pytest.raises(ApiError) as retried:
        sdk_client.files_copy_v2(f"{base}/original", f"{base}/copy")
    error = retried.value.error
    assert error.is_to() and error.get_to().is_conflict(), error


def test_create_folder_answer_lost_then_conflict(
    faults: EmulatorProcess, sdk_client: Any, base: str
) -> None:
    lose(faults, "files/create_folder_v2")
    with pytest.raises(requests.exceptions.ConnectionError) as excinfo:
        sdk_client.files_create_folder_v2(f"{base}/made")
    assert_cut(excinfo)
    assert isinstance(sdk_client.files_get_metadata(f"{base}/made"), files.FolderMetadata)
    with pytest.raises(ApiError) as retried:
        sdk_client.files_create_folder_v2(f"{base}/made")
    error = retried.value.error
    assert error.is_path() and error.get_path().get_conflict().is_folder(), error


def test_delete_batch_answer_lost_job_ran(
    faults: EmulatorProcess, sdk_client: Any, base: str
) -> None:
    for name in ("x", "y"):
        sdk_client.files_upload(name.encode(), f"{base}/{name}")
    lose(faults, "files/delete_batch")
    with pytest.raises(requests.exceptions.ConnectionError) as excinfo:
        sdk_client.files_delete_batch([files.DeleteArg(f"{base}/{n}") for n in ("x", "y")])
    assert_cut(excinfo)
    assert sdk_client.files_list_folder(base).entries == []


def test_error_answer_lost_too(faults: EmulatorProcess, sdk_client: Any, base: str) -> None:
    """A call that fails still ran; its 409 is lost like a 200 would be."""
    lose(faults, "files/get_metadata")
    with pytest.raises(requests.exceptions.ConnectionError) as excinfo:
        sdk_client.files_get_metadata(f"{base}/nothing-here")
    assert_cut(excinfo)
    with pytest.raises(ApiError):
        sdk_client.files_get_metadata(f"{base}/nothing-here")


def test_drop_true_still_drops_before_processing(
    faults: EmulatorProcess, sdk_client: Any, base: str
) -> None:
    faults.fault(route="files/create_folder_v2", drop_connection=True)
    with pytest.raises(requests.exceptions.ConnectionError):
        sdk_client.files_create_folder_v2(f"{base}/never")
    with pytest.raises(ApiError) as missing:
        sdk_client.files_get_metadata(f"{base}/never")
    assert missing.value.error.get_path().is_not_found()


# -- downloads, times and globs ------------------------------------------------------------------


def test_download_answer_lost_sends_nothing(
    faults: EmulatorProcess, sdk_client: Any, base: str
) -> None:
    data = bytes(range(256)) * 40
    sdk_client.files_upload(data, f"{base}/down.bin")
    downloads = requests_of(faults, "files/download")
    bytes_out = faults.stats()["bytes_out"]
    lose(faults, "files/download")
    with pytest.raises(requests.exceptions.ConnectionError) as excinfo:
        sdk_client.files_download(f"{base}/down.bin")  # not even the headers came
    assert_cut(excinfo)
    stats = faults.stats()
    assert stats["requests"]["files/download"] == downloads + 1
    assert stats["bytes_out"] == bytes_out
    _, resp = sdk_client.files_download(f"{base}/down.bin")
    assert resp.content == data


def test_times_and_glob(faults: EmulatorProcess, sdk_client: Any, base: str) -> None:
    lose(faults, "files/create_folder*", times=2)
    assert [f["drop_connection"] for f in faults.faults()] == ["after_processing"]
    assert sdk_client.check_user("other routes answer").result == "other routes answer"
    for name in ("one", "two"):
        with pytest.raises(requests.exceptions.ConnectionError) as excinfo:
            sdk_client.files_create_folder_v2(f"{base}/{name}")
        assert_cut(excinfo)
    assert faults.faults() == []
    sdk_client.files_create_folder_v2(f"{base}/three")  # answered
    names = sorted(e.name for e in sdk_client.files_list_folder(base).entries)
    assert names == ["one", "three", "two"]


def test_key_form_route(faults: EmulatorProcess, sdk_client: Any, base: str) -> None:
    lose(faults, "files/delete:2")
    sdk_client.files_upload(b"k", f"{base}/k")
    with pytest.raises(requests.exceptions.ConnectionError):
        sdk_client.files_delete_v2(f"{base}/k")
    assert sdk_client.files_list_folder(base).entries == []


# -- the control API -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        ({"after_bytes": 10}, "'after_bytes'"),
        ({"status": 503}, "'status'"),
        ({"status": 429, "reason": "too_many_requests"}, "'reason'"),
        ({"retry_after": 0}, "'retry_after'"),
        ({"corrupt_body": True}, "'corrupt_body'"),
        ({"entry_failure": "too_many_write_operations"}, "'entry_failure'"),
    ],
)
def test_after_processing_refuses_answer_fields(
    faults: EmulatorProcess, extra: dict[str, Any], named: str
) -> None:
    resp = control_raw(faults, "POST", "faults", {"route": "files/*", **LOST, **extra})
    assert resp.status_code == 400
    message = resp.json()["error"]
    assert "after_processing" in message and named in message, message
    assert faults.faults() == []


@pytest.mark.parametrize("value", ["after_sending", "AFTER_PROCESSING", 1, None, ["x"]])
def test_drop_connection_values(faults: EmulatorProcess, value: Any) -> None:
    resp = control_raw(faults, "POST", "faults", {"route": "x", "drop_connection": value})
    assert resp.status_code == 400
    assert resp.json()["error"] == "'drop_connection' must be true, false or \"after_processing\""
    assert faults.faults() == []


def test_list_of_specs_all_or_nothing(faults: EmulatorProcess) -> None:
    resp = control_raw(
        faults,
        "POST",
        "faults",
        [{"route": "files/upload", **LOST}, {"route": "files/upload", **LOST, "status": 500}],
    )
    assert resp.status_code == 400
    assert faults.faults() == []
    armed = faults.fault({"route": "files/upload", **LOST, "times": 3})
    assert armed == [
        {
            "route": "files/upload",
            "times": 3,
            "status": 500,
            "reason": "too_many_requests",
            "retry_after": 1,
            "drop_connection": "after_processing",
            "after_bytes": None,
            "corrupt_body": False,
            "entry_failure": None,
            "unknown_route": False,
        }
    ]


# -- OAuth ---------------------------------------------------------------------------------------


def test_code_exchange_answer_lost_code_used_up(faults: EmulatorProcess) -> None:
    """The token was issued and the answer lost: the single-use code is gone, so the user has
    to authorize again (what Dropbox does with a replayed code)."""
    app_key = faults.env["DROPBOX_APP_KEY"]
    flow = oauth.DropboxOAuth2FlowNoRedirect(
        app_key, use_pkce=True, token_access_type="offline", scope=SCOPES
    )
    code = code_on(approve(faults, flow.start()))
    assert code
    lose(faults, "oauth2/token")
    with pytest.raises(requests.exceptions.ConnectionError) as excinfo:
        flow.finish(code)
    assert_cut(excinfo)
    retried = token_request(
        faults,
        grant_type="authorization_code",
        code=code,
        code_verifier=flow.code_verifier,
        client_id=app_key,
    )
    assert retried.status_code == 400 and retried.json()["error"] == "invalid_grant"


def test_refresh_answer_lost_then_refreshed(faults: EmulatorProcess) -> None:
    issued = faults.token()
    dbx = dropbox.Dropbox(
        oauth2_refresh_token=issued["refresh_token"],
        app_key=faults.env["DROPBOX_APP_KEY"],
        max_retries_on_error=0,
    )
    refreshes = requests_of(faults, "oauth2/token")
    lose(faults, "oauth2/token")
    with pytest.raises(requests.exceptions.ConnectionError) as excinfo:
        dbx.check_user("first")
    assert_cut(excinfo)
    assert requests_of(faults, "oauth2/token") == refreshes + 1
    assert dbx.check_user("again").result == "again"  # a refresh token outlives a lost answer
