"""State across restarts, commit accounting, concurrency, reset: SDK against emulator processes."""

from __future__ import annotations

import threading
import uuid
from pathlib import Path
from typing import Any

import pytest
from dropbox import files
from dropbox.exceptions import ApiError

from tests.helpers.emulator import EmulatorProcess, sdk_client


@pytest.fixture
def base() -> str:
    return f"/p-{uuid.uuid4().hex[:10]}"


def client_for(emu: EmulatorProcess, monkeypatch: pytest.MonkeyPatch) -> Any:
    """An SDK client for a private emulator (each start makes a new CA, trusted per request)."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", emu.ca_bundle)
    return sdk_client(emu)


def test_state_survives_restart(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data_dir = tmp_path / "data"
    with EmulatorProcess(data_dir=data_dir) as emu:
        dbx = client_for(emu, monkeypatch)
        first = dbx.files_upload(b"v1", "/keep/File.txt")
        second = dbx.files_upload(b"v2", "/keep/File.txt", mode=files.WriteMode.overwrite)
        listing = dbx.files_list_folder("/keep", limit=1)
        sid = dbx.files_upload_session_start(b"partial").session_id
        launch = dbx.files_delete_batch([files.DeleteArg("/nothing")])
    with EmulatorProcess(data_dir=data_dir) as emu:
        dbx = client_for(emu, monkeypatch)
        md = dbx.files_get_metadata("/KEEP/file.txt")
        assert (md.id, md.rev, md.path_display) == (second.id, second.rev, "/keep/File.txt")
        _, resp = dbx.files_download("/keep/file.txt")
        with resp:
            assert resp.content == b"v2"
        revs = dbx.files_list_revisions("/keep/file.txt").entries
        assert [r.rev for r in revs] == [second.rev, first.rev]
        page = dbx.files_list_folder_continue(listing.cursor)  # cursor survived
        assert not page.has_more
        dbx.files_upload_session_append_v2(b"+more", files.UploadSessionCursor(sid, 7))
        done = dbx.files_upload_session_finish(
            b"", files.UploadSessionCursor(sid, 12), files.CommitInfo("/keep/session.txt")
        )
        assert done.size == 12
        status = dbx.files_delete_batch_check(launch.get_async_job_id())
        assert status.is_complete()


def test_reset_forgets_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with EmulatorProcess(data_dir=tmp_path / "d") as emu:
        dbx = client_for(emu, monkeypatch)
        dbx.files_upload(b"x", "/x")
        emu.control("POST", "reset")
        dbx = client_for(emu, monkeypatch)
        with pytest.raises(ApiError):
            dbx.files_get_metadata("/x")
        assert dbx.files_list_folder("").entries == []
        assert dbx.users_get_space_usage().used == 0


def test_each_write_is_one_commit(emulator: EmulatorProcess, sdk_client: Any, base: str) -> None:
    def commits() -> int:
        return int(emulator.stats()["commits"])

    steps: list[tuple[str, Any]] = [
        ("upload", lambda: sdk_client.files_upload(b"1", f"{base}/a")),
        ("create_folder", lambda: sdk_client.files_create_folder_v2(f"{base}/dir")),
        ("copy", lambda: sdk_client.files_copy_v2(f"{base}/a", f"{base}/b")),
        ("move", lambda: sdk_client.files_move_v2(f"{base}/b", f"{base}/dir/b")),
        ("delete", lambda: sdk_client.files_delete_v2(f"{base}/dir/b")),
        (
            "restore",
            lambda: sdk_client.files_restore(
                f"{base}/a", sdk_client.files_get_metadata(f"{base}/a").rev
            ),
        ),
        (
            "delete_batch",
            lambda: sdk_client.files_delete_batch(
                [files.DeleteArg(f"{base}/a"), files.DeleteArg(f"{base}/dir")]
            ),
        ),
    ]
    for name, step in steps:
        before = commits()
        step()
        assert commits() - before == 1, name


def test_parallel_uploads_are_safe(emulator: EmulatorProcess, base: str) -> None:
    errors: list[BaseException] = []
    clients = [sdk_client(emulator) for _ in range(8)]

    def work(index: int) -> None:
        dbx = clients[index]
        try:
            for round_ in range(5):
                dbx.files_upload(b"%d-%d" % (index, round_), f"{base}/w{index}/f{round_}")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors
    res = clients[0].files_list_folder(base, recursive=True)
    files_seen = [e for e in res.entries if isinstance(e, files.FileMetadata)]
    assert len(files_seen) == 40
    assert len({e.rev for e in files_seen}) == 40
