"""The smaller ways the emulator matches Dropbox: ETag/If-None-Match on downloads, "conflicted
copy" names in update mode, temporary links typed by their file name, bounded tables."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import dropbox
import pytest
import requests
from dropbox import exceptions, files

from dropbox_emulator.oauth.tokens import TokenStore
from tests.helpers.emulator import EmulatorProcess
from tests.unit.emulator.handler_calls import Harness


@pytest.fixture
def folder() -> str:
    return f"/smaller-{uuid.uuid4().hex[:8]}"


def test_download_etag_and_if_none_match(
    emulator: EmulatorProcess, sdk_client: Any, folder: str
) -> None:
    first = sdk_client.files_upload(b"version one", f"{folder}/cached.bin")
    _, response = sdk_client.files_download(f"{folder}/cached.bin")
    etag = response.headers["ETag"]
    assert first.rev in etag and response.content == b"version one"
    token = emulator.token()["access_token"]
    cached = dropbox.Dropbox(
        oauth2_access_token=token, headers={"If-None-Match": etag}, max_retries_on_error=0
    )
    with pytest.raises(exceptions.HttpError) as caught:
        cached.files_download(f"{folder}/cached.bin")
    assert caught.value.status_code == 304  # the SDK has no 304 path: it is an HttpError
    sdk_client.files_upload(b"version two", f"{folder}/cached.bin", mode=files.WriteMode.overwrite)
    _, fresh = cached.files_download(f"{folder}/cached.bin")  # changed: the tag moved on
    assert fresh.content == b"version two" and fresh.headers["ETag"] != etag


def test_update_mode_autorename_writes_a_conflicted_copy(sdk_client: Any, folder: str) -> None:
    path = f"{folder}/report.txt"
    first = sdk_client.files_upload(b"v1", path)
    sdk_client.files_upload(b"v2", path, mode=files.WriteMode.update(first.rev))
    stale = files.WriteMode.update(first.rev)  # someone else's edit came in between
    copy = sdk_client.files_upload(b"mine", path, mode=stale, autorename=True)
    assert copy.name == "report (conflicted copy).txt"
    again = sdk_client.files_upload(b"mine too", path, mode=stale, autorename=True)
    assert again.name == "report (conflicted copy 2).txt"
    # add mode keeps Dropbox's numbered names
    added = sdk_client.files_upload(b"added", path, autorename=True)
    assert added.name == "report (1).txt"


@pytest.mark.parametrize(
    ("name", "content_type"),
    [("photo.jpg", "image/jpeg"), ("notes.txt", "text/plain"), ("blob.xyz123", None)],
)
def test_temporary_link_content_type_from_the_name(
    emulator: EmulatorProcess, sdk_client: Any, folder: str, name: str, content_type: Any
) -> None:
    sdk_client.files_upload(b"bytes", f"{folder}/{name}")
    link = sdk_client.files_get_temporary_link(f"{folder}/{name}").link
    got = requests.get(link, verify=emulator.ca_bundle, timeout=60)
    assert got.status_code == 200 and got.content == b"bytes"
    assert got.headers["Content-Type"] == (content_type or "application/octet-stream")


def test_links_jobs_and_cursors_are_bounded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Links: capped, and collected a day after they expire (410 until then).
    tokens = TokenStore(tmp_path / "tokens.sqlite3")
    tokens.max_links = 3
    blob = tmp_path / "blob"
    blob.write_bytes(b"x")
    old = tokens.new_link(blob, "old.txt", -2 * 24 * 3600)  # expired two days ago
    recent = tokens.new_link(blob, "recent.txt", -60)  # expired a minute ago
    live = [tokens.new_link(blob, f"{i}.txt", 3600) for i in range(2)]
    assert tokens.link(old) is None  # collected: unknown now
    assert tokens.link(recent) is False  # still known as expired
    assert tokens.link(live[-1]) == (blob, "1.txt")
    more = [tokens.new_link(blob, f"more-{i}.txt", 3600) for i in range(3)]
    assert tokens.link(recent) is None and tokens.link(live[0]) is None  # the cap
    assert all(tokens.link(link) for link in more)
    tokens.close()
    # Jobs and cursors, on the state directly (thousands of rows through HTTPS would be slow).
    harness = Harness(tmp_path)
    jobs = harness.store.jobs
    jobs.max_jobs = 5
    ids = [jobs.add("delete_batch", '{".tag": "in_progress"}') for _ in range(8)]
    assert jobs.get(ids[0], "delete_batch") is None  # the oldest went
    assert jobs.get(ids[-1], "delete_batch") is not None
    jobs.ttl_s = -1  # everything is past its time
    assert jobs.get(ids[-1], "delete_batch") is None
    listing = harness.store.listing
    listing.max_cursors = 50
    first = harness.call("files/list_folder", files.ListFolderArg(path="")).cursor
    for _ in range(120):
        harness.call("files/list_folder", files.ListFolderArg(path=""))
    with pytest.raises(Exception) as caught:
        harness.call("files/list_folder/continue", files.ListFolderContinueArg(first))
    assert "reset" in repr(caught.value)
    rows = harness.store._db.execute("SELECT COUNT(*) FROM cursors").fetchone()[0]
    assert rows <= 50 + 100
