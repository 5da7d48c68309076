"""files/list_folder (+continue, get_latest_cursor) through the SDK against the emulator."""

from __future__ import annotations

import threading
import uuid
from typing import Any

import pytest
from dropbox import files
from dropbox.exceptions import ApiError, BadInputError


@pytest.fixture
def base() -> str:
    return f"/l-{uuid.uuid4().hex[:10]}"


def list_all(dbx: Any, path: str, **kwargs: Any) -> tuple[list[Any], str, int]:
    """Every entry of a listing, the final cursor and the number of pages."""
    res = dbx.files_list_folder(path, **kwargs)
    entries, pages = list(res.entries), 1
    while res.has_more and pages < 1000:
        res = dbx.files_list_folder_continue(res.cursor)
        entries.extend(res.entries)
        pages += 1
    return entries, res.cursor, pages


def test_non_recursive_listing(sdk_client: Any, base: str) -> None:
    sdk_client.files_upload(b"1", f"{base}/a.txt")
    sdk_client.files_upload(b"2", f"{base}/Sub/b.txt")
    entries, _, _ = list_all(sdk_client, base)
    by_name = {e.name: e for e in entries}
    assert set(by_name) == {"a.txt", "Sub"}
    assert isinstance(by_name["a.txt"], files.FileMetadata)
    assert isinstance(by_name["Sub"], files.FolderMetadata)


def test_recursive_listing_includes_folder_itself_parents_first(sdk_client: Any, base: str) -> None:
    for name in ("x/1", "x/y/2", "x/y/z/3", "w"):
        sdk_client.files_upload(b"d", f"{base}/{name}")
    entries, _, _ = list_all(sdk_client, base, recursive=True)
    lowers = [e.path_lower for e in entries]
    assert lowers[0] == base  # the listed folder itself
    assert set(lowers) == {
        base,
        f"{base}/w",
        f"{base}/x",
        f"{base}/x/1",
        f"{base}/x/y",
        f"{base}/x/y/2",
        f"{base}/x/y/z",
        f"{base}/x/y/z/3",
    }
    seen: set[str] = set()
    for lower in lowers:
        parent = lower.rsplit("/", 1)[0]
        assert lower == base or parent in seen, f"{lower} before its parent"
        seen.add(lower)


def test_root_listing_and_slash_is_bad_input(sdk_client: Any, base: str) -> None:
    sdk_client.files_upload(b"r", f"{base}/r")
    res = sdk_client.files_list_folder("")
    names = {e.name for e in res.entries}
    while res.has_more:
        res = sdk_client.files_list_folder_continue(res.cursor)
        names |= {e.name for e in res.entries}
    assert base[1:] in names
    with pytest.raises(BadInputError) as excinfo:
        sdk_client.files_list_folder("/")
    assert "Specify the root folder as an empty string" in str(excinfo.value)


def test_pagination_with_limit(sdk_client: Any, base: str) -> None:
    names = [f"f{i:03d}" for i in range(25)]
    sessions = []
    for name in names:
        sid = sdk_client.files_upload_session_start(name.encode(), close=True).session_id
        sessions.append(
            files.UploadSessionFinishArg(
                files.UploadSessionCursor(sid, len(name)), files.CommitInfo(f"{base}/{name}")
            )
        )
    result = sdk_client.files_upload_session_finish_batch_v2(sessions)
    assert all(e.is_success() for e in result.entries)
    entries, _, pages = list_all(sdk_client, base, limit=7)
    assert sorted(e.name for e in entries) == names
    assert pages == 4


def test_limit_2000_is_the_maximum(sdk_client: Any, base: str) -> None:
    sdk_client.files_create_folder_v2(base)
    assert sdk_client.files_list_folder(base, limit=2000).has_more is False
    with pytest.raises(Exception):  # noqa: B017  (the SDK's own validator refuses 2001)
        sdk_client.files_list_folder(base, limit=2001)


def test_cursor_is_a_change_feed(sdk_client: Any, base: str) -> None:
    sdk_client.files_upload(b"1", f"{base}/keep.txt")
    sdk_client.files_upload(b"2", f"{base}/drop.txt")
    _, cursor, _ = list_all(sdk_client, base, recursive=True)
    res = sdk_client.files_list_folder_continue(cursor)
    assert res.entries == [] and not res.has_more
    sdk_client.files_upload(b"3", f"{base}/new/n.txt")
    sdk_client.files_delete_v2(f"{base}/drop.txt")
    changes, _, _ = list_all_continue(sdk_client, res.cursor)
    kinds = {e.path_lower: type(e).__name__ for e in changes}
    assert kinds[f"{base}/new/n.txt"] == "FileMetadata"
    assert kinds[f"{base}/new"] == "FolderMetadata"
    assert kinds[f"{base}/drop.txt"] == "DeletedMetadata"
    assert f"{base}/keep.txt" not in kinds


def list_all_continue(dbx: Any, cursor: str) -> tuple[list[Any], str, int]:
    res = dbx.files_list_folder_continue(cursor)
    entries, pages = list(res.entries), 1
    while res.has_more and pages < 1000:
        res = dbx.files_list_folder_continue(res.cursor)
        entries.extend(res.entries)
        pages += 1
    return entries, res.cursor, pages


def test_get_latest_cursor_sees_only_later_changes(sdk_client: Any, base: str) -> None:
    sdk_client.files_upload(b"1", f"{base}/old.txt")
    cursor = sdk_client.files_list_folder_get_latest_cursor(base, recursive=True).cursor
    sdk_client.files_upload(b"2", f"{base}/later.txt")
    changes, _, _ = list_all_continue(sdk_client, cursor)
    assert [e.name for e in changes] == ["later.txt"]


def test_include_deleted(sdk_client: Any, base: str) -> None:
    sdk_client.files_upload(b"1", f"{base}/gone.txt")
    sdk_client.files_upload(b"1", f"{base}/here.txt")
    sdk_client.files_delete_v2(f"{base}/gone.txt")
    plain, _, _ = list_all(sdk_client, base)
    assert [e.name for e in plain] == ["here.txt"]
    with_deleted, _, _ = list_all(sdk_client, base, include_deleted=True)
    kinds = {e.name: type(e).__name__ for e in with_deleted}
    assert kinds == {"gone.txt": "DeletedMetadata", "here.txt": "FileMetadata"}


def test_listing_errors(sdk_client: Any, base: str) -> None:
    with pytest.raises(ApiError) as excinfo:
        sdk_client.files_list_folder(f"{base}/missing")
    assert excinfo.value.error.get_path().is_not_found()
    sdk_client.files_upload(b"f", f"{base}/file")
    with pytest.raises(ApiError) as excinfo:
        sdk_client.files_list_folder(f"{base}/file")
    assert excinfo.value.error.get_path().is_not_folder()
    with pytest.raises(BadInputError):
        sdk_client.files_list_folder_continue("not-a-cursor")


def test_longpoll_wakes_up_on_change(sdk_client: Any, base: str) -> None:
    sdk_client.files_create_folder_v2(base)
    cursor = sdk_client.files_list_folder_get_latest_cursor(base).cursor
    timer = threading.Timer(0.5, lambda: sdk_client.files_upload(b"n", f"{base}/new.txt"))
    timer.start()
    try:
        result = sdk_client.files_list_folder_longpoll(cursor, timeout=60)
    finally:
        timer.join(30)
    assert result.changes
    changes, _, _ = list_all_continue(sdk_client, cursor)
    assert [e.name for e in changes] == ["new.txt"]
