"""Unit tests of the semantics layer (paths, store, handlers called directly).

These call handlers in-process with a real `Store` and a no-op commit; what the SDK sees over
HTTPS is covered by the test_files_* integration tests.
"""

from __future__ import annotations

import random
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from dropbox import common, files
from stone.backends.python_rsrc.stone_validators import ValidationError

from dropbox_emulator.config import EmulatorConfig
from dropbox_emulator.handlers.contract import BadInput, PathRootFailure, RouteError
from dropbox_emulator.state import paths
from dropbox_emulator.state.account import HOME_NAMESPACE_ID
from dropbox_emulator.state.blobs import BLOCK_SIZE
from dropbox_emulator.state.store import Store
from tests.unit.emulator.handler_calls import Harness, content_hash


@pytest.fixture
def harness(tmp_path: Path) -> Harness:
    return Harness(tmp_path / "data")


# ----------------------------------------------------------------- paths


@pytest.mark.parametrize(
    "raw",
    ["a", "/a/", "//a", "/a//b", "/a/./b", "/a/../b", "/a\\b", "/a\x00", "/a ", "/" + "x" * 256],
)
def test_malformed_paths(raw: str) -> None:
    with pytest.raises(paths.PathProblem) as excinfo:
        paths.parse(raw)
    assert not excinfo.value.disallowed


@pytest.mark.parametrize("name", ["desktop.ini", "THUMBS.DB", ".ds_store", "Icon\r", ".dropbox"])
def test_disallowed_names(name: str) -> None:
    paths.parse(f"/d/{name}")  # fine to look up
    with pytest.raises(paths.PathProblem) as excinfo:
        paths.check_writable(f"/d/{name}")
    assert excinfo.value.disallowed


def test_parse_forms() -> None:
    assert paths.parse("") == paths.Target(kind="path", path="")
    assert paths.parse("ns:123/a/B") == paths.Target(kind="path", ns="123", path="/a/B")
    assert paths.parse("ns:123") == paths.Target(kind="path", ns="123", path="")
    assert paths.parse("rev:0123456789abc").rev == "0123456789abc"
    assert paths.parse("id:abc").file_id == "id:abc"
    with pytest.raises(paths.PathProblem):
        paths.parse("rev:XYZ")


def test_autorename_names() -> None:
    assert paths.autorename("/d/report.txt", 1, True) == "/d/report (1).txt"
    assert paths.autorename("/d/.hidden", 2, True) == "/d/.hidden (2)"
    assert paths.autorename("/d/v1.0", 1, False) == "/d/v1.0 (1)"


# ----------------------------------------------------------------- handlers


def test_every_route_registered() -> None:
    from dropbox_emulator.handlers.contract import HANDLERS

    expected = {
        "users/get_current_account",
        "users/get_space_usage",
        "files/get_metadata",
        "files/list_folder",
        "files/list_folder/continue",
        "files/list_folder/get_latest_cursor",
        "files/upload",
        "files/upload_session/start",
        "files/upload_session/start_batch",
        "files/upload_session/append_batch",
        "files/upload_session/append",
        "files/upload_session/append:2",
        "files/upload_session/finish",
        "files/upload_session/finish_batch",
        "files/upload_session/finish_batch:2",
        "files/upload_session/finish_batch/check",
        "files/download",
        "files/download_zip",
        "files/delete:2",
        "files/delete_batch",
        "files/delete_batch/check",
        "files/create_folder:2",
        "files/copy:2",
        "files/move:2",
        "files/list_revisions",
        "files/restore",
        "files/get_temporary_link",
    }
    assert expected <= set(HANDLERS)


def test_upload_is_one_commit_in_home(harness: Harness) -> None:
    harness.call("files/upload", files.UploadArg(path="/a"), b"x")
    assert harness.commits == [HOME_NAMESPACE_ID]


def test_list_folder_slash_is_bad_input(harness: Harness) -> None:
    with pytest.raises(BadInput, match="empty string"):
        harness.call("files/list_folder", files.ListFolderArg(path="/"))


def test_unknown_path_roots(harness: Harness) -> None:
    harness.path_root = common.PathRoot.root("42")
    with pytest.raises(PathRootFailure) as excinfo:
        harness.call("files/get_metadata", files.GetMetadataArg(path="/a"))
    assert excinfo.value.error.is_invalid_root()
    harness.path_root = common.PathRoot.namespace_id("42")
    with pytest.raises(PathRootFailure) as excinfo:
        harness.call("files/get_metadata", files.GetMetadataArg(path="/a"))
    assert excinfo.value.error.is_no_permission()


def test_session_expires_after_seven_days(harness: Harness) -> None:
    sid = harness.call(
        "files/upload_session/start", files.UploadSessionStartArg(), b"abc"
    ).session_id
    harness.store.session_ttl_s = 0.0
    time.sleep(0.01)
    with pytest.raises(RouteError) as excinfo:
        harness.call(
            "files/upload_session/append:2",
            files.UploadSessionAppendArg(cursor=files.UploadSessionCursor(sid, 3)),
            b"d",
        )
    assert excinfo.value.error.is_not_found()


def test_multi_piece_session_assembles_to_right_hash(harness: Harness) -> None:
    chunks = [b"a" * (BLOCK_SIZE + 7), b"b" * 3, b"c" * BLOCK_SIZE]
    sid = harness.call(
        "files/upload_session/start", files.UploadSessionStartArg(), chunks[0]
    ).session_id
    offset = len(chunks[0])
    harness.call(
        "files/upload_session/append:2",
        files.UploadSessionAppendArg(cursor=files.UploadSessionCursor(sid, offset)),
        chunks[1],
    )
    offset += len(chunks[1])
    md = harness.call(
        "files/upload_session/finish",
        files.UploadSessionFinishArg(
            cursor=files.UploadSessionCursor(sid, offset), commit=files.CommitInfo(path="/big")
        ),
        chunks[2],
    )
    data = b"".join(chunks)
    assert md.size == len(data) and md.content_hash == content_hash(data)
    assert harness.store.blob_path(md.content_hash).read_bytes() == data
    assert not list((harness.store.data_dir / "sessions").iterdir())


def test_store_reopens_with_state(tmp_path: Path) -> None:
    first = Harness(tmp_path / "d")
    md = first.call("files/upload", files.UploadArg(path="/Keep.txt"), b"keep")
    page = first.call("files/list_folder", files.ListFolderArg(path="", limit=1))
    first.store.close()
    second = Harness(tmp_path / "d")
    assert second.call("files/get_metadata", files.GetMetadataArg(path="/keep.TXT")).rev == md.rev
    assert (
        second.call(
            "files/list_folder/continue", files.ListFolderContinueArg(cursor=page.cursor)
        ).entries
        == []
    )


def test_revs_unique_under_threads(harness: Harness) -> None:
    revs: list[str] = []
    lock = threading.Lock()

    def work(index: int) -> None:
        for round_ in range(20):
            md = harness.call(
                "files/upload",
                files.UploadArg(path=f"/t{index}", mode=files.WriteMode.overwrite),
                b"%d-%d" % (index, round_),
            )
            with lock:
                revs.append(md.rev)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(revs) == 120 and len(set(revs)) == 120


def test_reset_clears_everything(harness: Harness) -> None:
    harness.call("files/upload", files.UploadArg(path="/x"), b"x")
    harness.store.reset()
    assert harness.store.used_bytes() == 0
    assert harness.call("files/list_folder", files.ListFolderArg(path="")).entries == []
    assert isinstance(harness.store, Store)


def _random_path(rng: random.Random) -> str:
    pieces = ["/", "/", "a", "B", " ", ".", "..", "\\", "\x00", "\ud800", "é", "ns:", "id:", "rev:"]
    pieces += ["3000000001", "0123456789abcdef", "desktop.ini", "x" * 300, ":", "//", "\r"]
    return "".join(rng.choice(pieces) for _ in range(rng.randint(0, 6)))


def test_handlers_survive_garbage_paths(harness: Harness) -> None:
    """Odd but schema-valid args end in a route error or 400, never in a crash."""
    rng = random.Random(1234)
    harness.call("files/upload", files.UploadArg(path="/a/B"), b"x")
    expected = (RouteError, BadInput, PathRootFailure)
    for _ in range(300):
        one, two = _random_path(rng), _random_path(rng)
        for route, make, data in _attempts(one, two):
            try:
                arg = make()
            except ValidationError:
                continue  # the SDK's schema refuses it; the server's strict decode would too
            try:
                harness.call(route, arg, data)
            except expected:
                pass


def _attempts(one: str, two: str) -> list[tuple[str, Any, Any]]:
    return [
        ("files/get_metadata", lambda: files.GetMetadataArg(path=one, include_deleted=True), None),
        ("files/list_folder", lambda: files.ListFolderArg(path=one, recursive=True), None),
        ("files/upload", lambda: files.UploadArg(path=one), b"z"),
        ("files/create_folder:2", lambda: files.CreateFolderArg(path=one), None),
        ("files/delete:2", lambda: files.DeleteArg(path=one), None),
        ("files/copy:2", lambda: files.RelocationArg(from_path=one, to_path=two), None),
        ("files/move:2", lambda: files.RelocationArg(from_path=two, to_path=one), None),
        ("files/list_revisions", lambda: files.ListRevisionsArg(path=one), None),
        ("files/download", lambda: files.DownloadArg(path=one), None),
        (
            "files/list_folder/continue",
            lambda: files.ListFolderContinueArg(cursor=one or "c"),
            None,
        ),
    ]


def test_used_bytes_follows_every_kind_of_change(tmp_path: Path) -> None:
    """The quota counter kept by triggers equals the sum of live files after writes,
    overwrites, deletes and a reset (it is what insufficient_space is decided on)."""
    store = Store(tmp_path, EmulatorConfig(data_dir=tmp_path))

    def truth() -> int:
        row = store._db.execute(
            "SELECT COALESCE(SUM(size), 0) FROM entries WHERE kind = 'file'"
        ).fetchone()
        return int(row[0])

    store._db.execute(
        "INSERT INTO entries VALUES ('ns', '/a', '', '/a', 'file', 'id:a', 'r1', 10,"
        " NULL, NULL, NULL, 1)"
    )
    store._db.execute(
        "INSERT INTO entries VALUES ('ns', '/d', '', '/d', 'folder', 'id:d', NULL, NULL,"
        " NULL, NULL, NULL, 2)"
    )
    assert store.used_bytes() == truth() == 10
    store._db.execute("UPDATE entries SET size = 25 WHERE path_lower = '/a'")
    assert store.used_bytes() == truth() == 25
    store._db.execute("UPDATE entries SET kind = 'deleted' WHERE path_lower = '/a'")
    assert store.used_bytes() == truth() == 0
    store._db.execute("UPDATE entries SET kind = 'file', size = 7 WHERE path_lower = '/a'")
    assert store.used_bytes() == truth() == 7
    store.reset()
    assert store.used_bytes() == truth() == 0
    store.close()
