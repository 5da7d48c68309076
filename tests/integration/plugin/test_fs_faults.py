"""`DropboxFS` when answers are lost or local paths are in the way (issue 11, item 6).

Faults come from the emulator's control API; the remote side is checked through the SDK.
"""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dropbox import exceptions

from dvc_dropbox import connection
from dvc_dropbox.fs import DropboxFS
from tests.helpers.emulator import EmulatorProcess

LOST = {"drop_connection": "after_processing"}


@pytest.fixture
def faults(emulator: EmulatorProcess) -> Iterator[EmulatorProcess]:
    yield emulator
    emulator.clear_faults()


@pytest.fixture
def dbfs(dropbox_creds: dict[str, str]) -> DropboxFS:
    return DropboxFS(app_key=dropbox_creds["DROPBOX_APP_KEY"])


@pytest.fixture
def base(dropbox_sdk: Any) -> str:
    name = f"FS-Faults/{uuid.uuid4().hex[:12]}"
    dropbox_sdk.files_create_folder_v2("/" + name)
    return name


def exists(sdk: Any, path: str) -> bool:
    try:
        sdk.files_get_metadata(path)
    except exceptions.ApiError:
        return False
    return True


def requests_of(emu: EmulatorProcess, route: str) -> int:
    return int(emu.stats()["requests"].get(route, 0))


def test_mv_whose_answer_was_lost_is_success(
    dbfs: DropboxFS, dropbox_sdk: Any, base: str, faults: EmulatorProcess
) -> None:
    dropbox_sdk.files_upload(b"moved once", f"/{base}/a.txt")
    before = requests_of(faults, "files/move_v2")
    faults.fault(route="files/move_v2", times=1, **LOST)
    dbfs.mv(f"{base}/a.txt", f"{base}/b.txt")
    assert requests_of(faults, "files/move_v2") - before == 2  # really retried after the loss
    assert not exists(dropbox_sdk, f"/{base}/a.txt")
    _, resp = dropbox_sdk.files_download(f"/{base}/b.txt")
    assert resp.content == b"moved once"


def test_mv_of_a_missing_file_still_fails(dbfs: DropboxFS, base: str) -> None:
    with pytest.raises(FileNotFoundError):
        dbfs.mv(f"{base}/never.txt", f"{base}/b.txt")


def test_rm_file_whose_answer_was_lost_is_success(
    dbfs: DropboxFS, dropbox_sdk: Any, base: str, faults: EmulatorProcess
) -> None:
    dropbox_sdk.files_upload(b"x", f"/{base}/gone.txt")
    before = requests_of(faults, "files/delete_v2")
    faults.fault(route="files/delete_v2", times=1, **LOST)
    dbfs.rm_file(f"{base}/gone.txt")
    assert requests_of(faults, "files/delete_v2") - before == 2
    assert not exists(dropbox_sdk, f"/{base}/gone.txt")


def test_rm_file_of_a_missing_file_still_fails(dbfs: DropboxFS, base: str) -> None:
    with pytest.raises(FileNotFoundError):
        dbfs.rm_file(f"{base}/never.txt")


def test_get_file_onto_a_local_folder_fails(
    dbfs: DropboxFS, dropbox_sdk: Any, base: str, tmp_path: Path
) -> None:
    dropbox_sdk.files_upload(b"data", f"/{base}/f.bin")
    target = tmp_path / "in-the-way"
    (target / "inside").mkdir(parents=True)
    with pytest.raises(OSError):
        dbfs.get_file(f"{base}/f.bin", str(target))
    assert sorted(os.listdir(target)) == ["inside"]  # nothing reported done, nothing written
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".dropbox-tmp")]


def test_get_file_of_a_remote_folder_makes_a_local_folder(
    dbfs: DropboxFS, dropbox_sdk: Any, base: str, tmp_path: Path
) -> None:
    dropbox_sdk.files_create_folder_v2(f"/{base}/sub")
    dbfs.get_file(f"{base}/sub", str(tmp_path / "sub"))
    assert (tmp_path / "sub").is_dir()


def test_connection_cache_is_per_repository(
    dropbox_creds: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One process, two repositories: each gets its own client (its own credentials file)."""
    settings = connection.Settings(app_key=dropbox_creds["DROPBOX_APP_KEY"])
    keys = []
    for name in ("one", "two"):
        repo = tmp_path / name
        (repo / ".dvc").mkdir(parents=True)
        (repo / "sub").mkdir()
        monkeypatch.chdir(repo / "sub")
        keys.append(connection.cache_key(settings))
    assert keys[0] != keys[1]
    monkeypatch.chdir(tmp_path / "one")
    assert connection.cache_key(settings) == keys[0]  # same repository from its root: shared
    monkeypatch.setenv("DROPBOX_CREDENTIALS_FILE", str(tmp_path / "other.json"))
    assert connection.cache_key(settings) != keys[0]
    monkeypatch.delenv("DROPBOX_CREDENTIALS_FILE")
    assert connection.cache_key(connection.Settings(app_key="another-key")) != keys[0]
    team = connection.Settings(app_key=settings.app_key, path_root="home")
    assert connection.cache_key(team) != keys[0]


def test_building_one_connection_does_not_block_another(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A connection that is being built (maybe prompting) holds only its own key's lock."""
    started, release = threading.Event(), threading.Event()
    built: list[str] = []

    class FakeConnection:
        def __init__(self, settings: connection.Settings, url: Any = None):
            if settings.app_key == "slow":
                started.set()
                assert release.wait(30)
            built.append(str(settings.app_key))

    monkeypatch.setattr(connection, "Connection", FakeConnection)
    monkeypatch.setattr(connection, "_connections", {})
    slow = threading.Thread(
        target=connection.connection_for, args=(connection.Settings(app_key="slow"),)
    )
    slow.start()
    try:
        assert started.wait(30)
        fast = connection.connection_for(connection.Settings(app_key="fast"))
        assert built == ["fast"]
        assert connection.connection_for(connection.Settings(app_key="fast")) is fast
    finally:
        release.set()
        slow.join(30)
    assert built == ["fast", "slow"]


def test_one_process_two_repositories_use_their_own_credentials(
    emulator: EmulatorProcess, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As a long-lived `dvc.api` process would: repo one's credentials file works; repo two's
    holds a revoked grant, which must be what repo two meets (not repo one's cached client)."""
    from dvc_dropbox.auth import credentials
    from dvc_dropbox.auth.credentials import Credentials, CredentialsFile
    from dvc_dropbox.errors import DropboxAuthError

    for var in (*credentials.CREDENTIAL_VARS, "DROPBOX_EXPIRES_AT"):
        monkeypatch.delenv(var, raising=False)
    for key, value in emulator.env.items():
        monkeypatch.setenv(key, value)
    app_key = emulator.app_key
    tokens = {"one": emulator.token(), "two": emulator.token()}
    emulator.revoke_token(tokens["two"]["refresh_token"])
    for name, tok in tokens.items():
        repo = tmp_path / name
        (repo / ".dvc" / "tmp").mkdir(parents=True)
        store = CredentialsFile(repo / ".dvc" / "tmp" / credentials.DEFAULT_FILE_NAME)
        with store.locked():
            store.put(
                Credentials(
                    app_key=app_key,
                    refresh_token=tok["refresh_token"],
                    access_token=tok["access_token"],
                    expires_at=credentials.parse_expiry(tok["expires_at"]),
                    account_id=tok["account_id"],
                )
            )
    monkeypatch.chdir(tmp_path / "one")
    DropboxFS(app_key=app_key).connect()
    monkeypatch.chdir(tmp_path / "two")
    with pytest.raises(DropboxAuthError, match="two"):
        DropboxFS(app_key=app_key).connect()
