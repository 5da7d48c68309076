"""files/* and users/* basics through the official SDK against the emulator process."""

from __future__ import annotations

import re
import uuid
from typing import Any

import dropbox
import pytest
import requests
from dropbox import common, files
from dropbox.exceptions import ApiError, BadInputError, PathRootError

from tests.helpers.content_hash import content_hash
from tests.helpers.emulator import EmulatorProcess
from tests.helpers.sdk_compat import download_with_headers


def chash(data: bytes) -> str:
    return content_hash(data)


@pytest.fixture
def base() -> str:
    """A fresh folder name per test, so tests sharing the session emulator don't collide."""
    return f"/t-{uuid.uuid4().hex[:10]}"


def upload(dbx: Any, path: str, data: bytes, **kwargs: Any) -> files.FileMetadata:
    return dbx.files_upload(data, path, **kwargs)


def error_of(excinfo: Any) -> Any:
    return excinfo.value.error


# ----------------------------------------------------------------- users


def test_get_current_account_has_team_space_root(sdk_client: Any) -> None:
    account = sdk_client.users_get_current_account()
    assert len(account.account_id) == 40
    assert account.name.display_name
    root = account.root_info
    assert isinstance(root, common.TeamRootInfo)
    assert root.root_namespace_id != root.home_namespace_id


def test_space_usage_counts_uploaded_bytes(sdk_client: Any, base: str) -> None:
    before = sdk_client.users_get_space_usage()
    assert before.allocation.is_individual()
    assert before.allocation.get_individual().allocated > 0
    upload(sdk_client, f"{base}/f.bin", b"x" * 1000)
    after = sdk_client.users_get_space_usage()
    assert after.used == before.used + 1000


# ----------------------------------------------------------------- upload / metadata / download


def test_upload_metadata_download_round_trip(sdk_client: Any, base: str) -> None:
    data = b"hello dropbox"
    md = upload(sdk_client, f"{base}/Dir/Hello.TXT", data)
    assert md.name == "Hello.TXT"
    assert md.path_display == f"{base}/Dir/Hello.TXT"
    assert md.path_lower == md.path_display.lower()
    assert md.size == len(data)
    assert md.content_hash == chash(data)
    assert re.fullmatch(r"[0-9a-f]{9,}", md.rev)
    assert re.fullmatch(r"id:[A-Za-z0-9_-]{22}", md.id)
    assert md.server_modified.microsecond == 0
    # case-insensitive lookups
    got = sdk_client.files_get_metadata(f"{base}/dir/hello.txt")
    assert isinstance(got, files.FileMetadata) and got.id == md.id and got.rev == md.rev
    folder = sdk_client.files_get_metadata(f"{base}/DIR")
    assert isinstance(folder, files.FolderMetadata) and folder.name == "Dir"
    dl_md, resp = sdk_client.files_download(f"{base}/DIR/HELLO.txt")
    with resp:
        assert resp.content == data
    assert dl_md.rev == md.rev
    by_id = sdk_client.files_get_metadata(md.id)
    assert by_id.path_lower == md.path_lower


def test_empty_file(sdk_client: Any, base: str) -> None:
    md = upload(sdk_client, f"{base}/empty", b"")
    assert md.size == 0 and md.content_hash == chash(b"")
    _, resp = sdk_client.files_download(f"{base}/empty")
    with resp:
        assert resp.content == b""


def test_client_modified_is_stored(sdk_client: Any, base: str) -> None:
    import datetime

    when = datetime.datetime(2020, 1, 2, 3, 4, 5)
    md = upload(sdk_client, f"{base}/c", b"c", client_modified=when)
    assert md.client_modified == when
    assert sdk_client.files_get_metadata(f"{base}/c").client_modified == when


def test_get_metadata_not_found_and_include_deleted(sdk_client: Any, base: str) -> None:
    with pytest.raises(ApiError) as excinfo:
        sdk_client.files_get_metadata(f"{base}/missing")
    assert error_of(excinfo).get_path().is_not_found()
    upload(sdk_client, f"{base}/gone.txt", b"x")
    sdk_client.files_delete_v2(f"{base}/gone.txt")
    with pytest.raises(ApiError):
        sdk_client.files_get_metadata(f"{base}/gone.txt")
    deleted = sdk_client.files_get_metadata(f"{base}/gone.txt", include_deleted=True)
    assert isinstance(deleted, files.DeletedMetadata)
    assert deleted.path_lower == f"{base}/gone.txt"


def test_get_metadata_of_slash_is_bad_input(sdk_client: Any) -> None:
    with pytest.raises(BadInputError):
        sdk_client.files_get_metadata("/")


def test_download_errors(sdk_client: Any, base: str) -> None:
    sdk_client.files_create_folder_v2(f"{base}/folder")
    with pytest.raises(ApiError) as excinfo:
        sdk_client.files_download(f"{base}/folder")
    assert error_of(excinfo).get_path().is_not_file()
    with pytest.raises(ApiError) as excinfo:
        sdk_client.files_download(f"{base}/nothing")
    assert error_of(excinfo).get_path().is_not_found()


def test_download_range(sdk_client: Any, base: str) -> None:
    data = bytes(range(256)) * 4
    upload(sdk_client, f"{base}/r.bin", data)
    _, resp = download_with_headers(sdk_client, f"{base}/r.bin", {"Range": "bytes=10-19"})
    with resp:
        assert resp.status_code == 206
        assert resp.content == data[10:20]


# ----------------------------------------------------------------- write modes


def test_add_mode_conflict_identical_and_autorename(sdk_client: Any, base: str) -> None:
    path = f"{base}/a.txt"
    first = upload(sdk_client, path, b"one")
    same = upload(sdk_client, path.upper().replace("/T-", "/t-"), b"one")
    assert same.rev == first.rev  # identical content: nothing written
    with pytest.raises(ApiError) as excinfo:
        upload(sdk_client, path, b"two")
    err = error_of(excinfo)
    assert err.is_path()
    assert err.get_path().reason.get_conflict().is_file()
    assert err.get_path().upload_session_id
    renamed = upload(sdk_client, path, b"two", autorename=True)
    assert renamed.name == "a (1).txt"
    with pytest.raises(ApiError) as excinfo:
        upload(sdk_client, path, b"one", strict_conflict=True)
    assert error_of(excinfo).get_path().reason.is_conflict()


def test_overwrite_and_update_modes(sdk_client: Any, base: str) -> None:
    path = f"{base}/m.txt"
    first = upload(sdk_client, path, b"v1")
    second = upload(sdk_client, path, b"v2", mode=files.WriteMode.overwrite)
    assert second.rev != first.rev and second.id == first.id
    third = upload(sdk_client, path, b"v3", mode=files.WriteMode.update(second.rev))
    assert third.rev != second.rev
    with pytest.raises(ApiError) as excinfo:
        upload(sdk_client, path, b"v4", mode=files.WriteMode.update(first.rev))
    assert error_of(excinfo).get_path().reason.get_conflict().is_file()
    same = upload(sdk_client, path, b"v3", mode=files.WriteMode.update(first.rev))
    assert same.rev == third.rev


def test_folder_and_file_ancestor_conflicts(sdk_client: Any, base: str) -> None:
    sdk_client.files_create_folder_v2(f"{base}/dir")
    with pytest.raises(ApiError) as excinfo:
        upload(sdk_client, f"{base}/dir", b"x", mode=files.WriteMode.overwrite)
    assert error_of(excinfo).get_path().reason.get_conflict().is_folder()
    upload(sdk_client, f"{base}/file", b"x")
    with pytest.raises(ApiError) as excinfo:
        upload(sdk_client, f"{base}/file/child", b"x")
    assert error_of(excinfo).get_path().reason.get_conflict().is_file_ancestor()


def test_content_hash_mismatch(sdk_client: Any, base: str) -> None:
    with pytest.raises(ApiError) as excinfo:
        upload(sdk_client, f"{base}/h", b"data", content_hash=chash(b"other"))
    assert error_of(excinfo).is_content_hash_mismatch()
    sid = sdk_client.files_upload_session_start(b"abc").session_id
    cursor = files.UploadSessionCursor(sid, 3)
    with pytest.raises(ApiError) as excinfo:
        sdk_client.files_upload_session_append_v2(b"def", cursor, content_hash=chash(b"x"))
    assert error_of(excinfo).is_content_hash_mismatch()
    with pytest.raises(ApiError) as excinfo:
        sdk_client.files_upload_session_finish(
            b"def", cursor, files.CommitInfo(f"{base}/h"), content_hash=chash(b"x")
        )
    assert error_of(excinfo).is_content_hash_mismatch()
    with pytest.raises(ApiError) as excinfo:
        sdk_client.files_upload_session_start(b"abc", content_hash=chash(b"x"))
    assert error_of(excinfo).is_content_hash_mismatch()


@pytest.mark.parametrize(
    "name", ["desktop.ini", "Thumbs.db", ".DS_Store", "Icon\r", ".dropbox", ".dropbox.attr"]
)
def test_disallowed_names(sdk_client: Any, base: str, name: str) -> None:
    with pytest.raises(ApiError) as excinfo:
        upload(sdk_client, f"{base}/{name}", b"x")
    assert error_of(excinfo).get_path().reason.is_disallowed_name()
    with pytest.raises(ApiError) as excinfo:
        sdk_client.files_create_folder_v2(f"{base}/{name}")
    assert error_of(excinfo).get_path().is_disallowed_name()


def test_long_component_is_malformed(sdk_client: Any, base: str) -> None:
    ok = upload(sdk_client, f"{base}/{'n' * 255}", b"x")
    assert len(ok.name) == 255
    with pytest.raises(ApiError) as excinfo:
        upload(sdk_client, f"{base}/{'n' * 256}", b"x")
    assert error_of(excinfo).get_path().reason.is_malformed_path()
    with pytest.raises(ApiError) as excinfo:
        sdk_client.files_get_metadata(f"{base}/{'n' * 256}")
    assert error_of(excinfo).get_path().is_malformed_path()


def test_insufficient_space(emulator: EmulatorProcess, sdk_client: Any, base: str) -> None:
    used = sdk_client.users_get_space_usage().used
    emulator.control("POST", "config", {"quota_bytes": used + 10})
    try:
        upload(sdk_client, f"{base}/fits", b"x" * 10)
        with pytest.raises(ApiError) as excinfo:
            upload(sdk_client, f"{base}/too-big", b"x")
        assert error_of(excinfo).get_path().reason.is_insufficient_space()
    finally:
        emulator.control("POST", "config", {"quota_bytes": 2 * 1024**4})


# ----------------------------------------------------------------- folders, delete, copy, move


def test_create_folder(sdk_client: Any, base: str) -> None:
    res = sdk_client.files_create_folder_v2(f"{base}/A/B")
    assert res.metadata.path_display == f"{base}/A/B"
    assert isinstance(sdk_client.files_get_metadata(f"{base}/a"), files.FolderMetadata)
    with pytest.raises(ApiError) as excinfo:
        sdk_client.files_create_folder_v2(f"{base}/a/b")
    assert error_of(excinfo).get_path().get_conflict().is_folder()
    again = sdk_client.files_create_folder_v2(f"{base}/a/b", autorename=True)
    assert again.metadata.name == "b (1)"  # the requested casing
    upload(sdk_client, f"{base}/f", b"x")
    with pytest.raises(ApiError) as excinfo:
        sdk_client.files_create_folder_v2(f"{base}/f")
    assert error_of(excinfo).get_path().get_conflict().is_file()
    with pytest.raises(ApiError) as excinfo:
        sdk_client.files_create_folder_v2(f"{base}/f/sub")
    assert error_of(excinfo).get_path().get_conflict().is_file_ancestor()


def test_delete_v2(sdk_client: Any, base: str) -> None:
    md = upload(sdk_client, f"{base}/d/x.txt", b"x")
    upload(sdk_client, f"{base}/d/y/z.txt", b"z")
    res = sdk_client.files_delete_v2(f"{base}/d/x.txt")
    assert isinstance(res.metadata, files.FileMetadata) and res.metadata.rev == md.rev
    with pytest.raises(ApiError) as excinfo:
        sdk_client.files_delete_v2(f"{base}/d/x.txt")
    assert error_of(excinfo).get_path_lookup().is_not_found()
    res = sdk_client.files_delete_v2(f"{base}/D")
    assert isinstance(res.metadata, files.FolderMetadata)
    with pytest.raises(ApiError):
        sdk_client.files_get_metadata(f"{base}/d/y/z.txt")


def test_delete_parent_rev(sdk_client: Any, base: str) -> None:
    first = upload(sdk_client, f"{base}/p", b"1")
    upload(sdk_client, f"{base}/p", b"2", mode=files.WriteMode.overwrite)
    with pytest.raises(ApiError) as excinfo:
        sdk_client.files_delete_v2(f"{base}/p", parent_rev=first.rev)
    assert error_of(excinfo).is_path_write()


def test_delete_batch_with_check(sdk_client: Any, base: str) -> None:
    for i in range(3):
        upload(sdk_client, f"{base}/b{i}", b"%d" % i)
    launch = sdk_client.files_delete_batch(
        [files.DeleteArg(f"{base}/b{i}") for i in range(3)] + [files.DeleteArg(f"{base}/none")]
    )
    assert launch.is_async_job_id()
    status = sdk_client.files_delete_batch_check(launch.get_async_job_id())
    for _ in range(50):
        if not status.is_in_progress():
            break
        status = sdk_client.files_delete_batch_check(launch.get_async_job_id())
    assert status.is_complete()
    entries = status.get_complete().entries
    assert [e.is_success() for e in entries] == [True, True, True, False]
    assert entries[0].get_success().metadata.name == "b0"
    assert entries[3].get_failure().get_path_lookup().is_not_found()
    with pytest.raises(ApiError) as excinfo:
        sdk_client.files_delete_batch_check("dbjid:nonsense")
    assert error_of(excinfo).is_invalid_async_job_id()


def test_copy_and_move(sdk_client: Any, base: str) -> None:
    src = upload(sdk_client, f"{base}/src/f.txt", b"content")
    copied = sdk_client.files_copy_v2(f"{base}/src", f"{base}/copy").metadata
    assert isinstance(copied, files.FolderMetadata)
    copy_file = sdk_client.files_get_metadata(f"{base}/copy/f.txt")
    assert copy_file.id != src.id and copy_file.content_hash == src.content_hash
    moved = sdk_client.files_move_v2(f"{base}/src/f.txt", f"{base}/Moved/F2.txt").metadata
    assert moved.id == src.id  # ids survive moves
    assert moved.path_display == f"{base}/Moved/F2.txt"
    assert sdk_client.files_get_metadata(src.id).path_lower == f"{base}/moved/f2.txt"
    with pytest.raises(ApiError):
        sdk_client.files_get_metadata(f"{base}/src/f.txt")
    with pytest.raises(ApiError) as excinfo:
        sdk_client.files_copy_v2(f"{base}/copy/f.txt", f"{base}/moved/f2.txt")
    assert error_of(excinfo).get_to().get_conflict().is_file()
    renamed = sdk_client.files_copy_v2(
        f"{base}/copy/f.txt", f"{base}/moved/f2.txt", autorename=True
    ).metadata
    assert renamed.name == "f2 (1).txt"
    assert renamed.path_display == f"{base}/Moved/f2 (1).txt"  # parents keep their casing
    with pytest.raises(ApiError) as excinfo:
        sdk_client.files_move_v2(f"{base}/nothing", f"{base}/x")
    assert error_of(excinfo).get_from_lookup().is_not_found()
    with pytest.raises(ApiError) as excinfo:
        sdk_client.files_move_v2(f"{base}/copy", f"{base}/copy/inner")
    assert error_of(excinfo).is_cant_move_folder_into_itself()


# ----------------------------------------------------------------- revisions


def test_revisions_download_rev_and_restore(sdk_client: Any, base: str) -> None:
    path = f"{base}/rev.txt"
    revs = [
        upload(sdk_client, path, b"version %d" % i, mode=files.WriteMode.overwrite).rev
        for i in range(3)
    ]
    assert len(set(revs)) == 3
    result = sdk_client.files_list_revisions(path)
    assert not result.is_deleted
    assert [e.rev for e in result.entries] == revs[::-1]
    page = sdk_client.files_list_revisions(path, limit=2)
    assert len(page.entries) == 2
    if "has_more" in files.ListRevisionsResult._all_field_names_:  # new in SDK 12.2
        assert page.has_more
    _, resp = sdk_client.files_download(f"rev:{revs[0]}")
    with resp:
        assert resp.content == b"version 0"
    restored = sdk_client.files_restore(path, revs[0])
    assert restored.content_hash == chash(b"version 0")
    _, resp = sdk_client.files_download(path)
    with resp:
        assert resp.content == b"version 0"
    with pytest.raises(ApiError) as excinfo:
        sdk_client.files_restore(path, "0123456789abcdef")
    assert error_of(excinfo).is_invalid_revision()
    sdk_client.files_delete_v2(path)
    deleted = sdk_client.files_list_revisions(path)
    assert deleted.is_deleted and deleted.server_deleted is not None
    with pytest.raises(ApiError) as excinfo:
        sdk_client.files_list_revisions(f"{base}/never")
    assert error_of(excinfo).get_path().is_not_found()


def test_get_temporary_link(sdk_client: Any, base: str) -> None:
    upload(sdk_client, f"{base}/link.bin", b"linked bytes")
    res = sdk_client.files_get_temporary_link(f"{base}/link.bin")
    assert res.metadata.name == "link.bin"
    resp = requests.get(res.link, timeout=30)
    assert resp.status_code == 200 and resp.content == b"linked bytes"
    with pytest.raises(ApiError) as excinfo:
        sdk_client.files_get_temporary_link(f"{base}/nope")
    assert error_of(excinfo).get_path().is_not_found()


# ----------------------------------------------------------------- path roots


def test_path_root_team_space_and_errors(sdk_client: Any, base: str) -> None:
    root = sdk_client.users_get_current_account().root_info
    team = sdk_client.with_path_root(common.PathRoot.root(root.root_namespace_id))
    upload(team, f"{base}/in-team.txt", b"team")
    with pytest.raises(ApiError):
        sdk_client.files_get_metadata(f"{base}/in-team.txt")  # home doesn't see it
    assert team.files_get_metadata(f"{base}/in-team.txt").size == 4
    ns_path = f"ns:{root.root_namespace_id}{base}/in-team.txt"
    assert sdk_client.files_get_metadata(ns_path).name == "in-team.txt"
    home = sdk_client.with_path_root(common.PathRoot.home)
    upload(home, f"{base}/in-home.txt", b"home")
    assert sdk_client.files_get_metadata(f"{base}/in-home.txt").size == 4
    by_ns = sdk_client.with_path_root(common.PathRoot.namespace_id(root.home_namespace_id))
    assert by_ns.files_get_metadata(f"{base}/in-home.txt").size == 4
    with pytest.raises(PathRootError) as excinfo:
        sdk_client.with_path_root(common.PathRoot.root("999999")).files_get_metadata("/x")
    assert excinfo.value.error.is_invalid_root()
    with pytest.raises(PathRootError) as excinfo:
        sdk_client.with_path_root(common.PathRoot.namespace_id("999999")).files_get_metadata("/x")
    assert excinfo.value.error.is_no_permission()


def test_sdk_client_is_unmodified() -> None:
    assert dropbox.__version__.startswith("12.")
