"""The credentials file store: format, atomic 0600 writes, keyed entries, concurrent writers."""

from __future__ import annotations

import datetime
import json
import multiprocessing
import os
import stat
import subprocess
import threading
from pathlib import Path

import pytest

from dvc_dropbox.auth import credentials as cred
from dvc_dropbox.auth.credentials import Credentials, CredentialsFile
from dvc_dropbox.errors import DropboxAuthError, DropboxConfigError


def _creds(app_key: str = "key-a", n: int = 0) -> Credentials:
    return Credentials(
        app_key=app_key,
        refresh_token=f"refresh-{app_key}",
        access_token=f"access-{app_key}-{n}",
        expires_at=datetime.datetime(2030, 1, 1, 12, 0, 0),
        account_id="dbid:acct",
        scope="files.content.read",
    )


def test_round_trip_mode_0600_and_format(tmp_path: Path) -> None:
    store = CredentialsFile(tmp_path / "sub" / "creds.json")
    with store.locked():
        store.put(_creds())
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    doc = json.loads(store.path.read_text())
    assert doc["format"] == cred.FORMAT and doc["version"] == 1
    entry = doc["credentials"]["key-a"]
    assert entry["expires_at"] == "2030-01-01T12:00:00Z"
    assert entry["account_id"] == "dbid:acct" and entry["app_key"] == "key-a"
    loaded = store.get("key-a")
    assert loaded == _creds()
    # No temporary files are left behind.
    assert sorted(p.name for p in store.path.parent.iterdir()) == ["creds.json", "creds.json.lock"]


def test_entries_are_keyed_by_app_key(tmp_path: Path) -> None:
    store = CredentialsFile(tmp_path / "creds.json")
    with store.locked():
        store.put(_creds("key-a"))
        store.put(_creds("key-b"))
        store.put(_creds("key-a", 2))
    assert store.app_keys() == ["key-a", "key-b"]
    assert store.get("key-a").access_token == "access-key-a-2"  # type: ignore[union-attr]
    assert store.get("key-b").access_token == "access-key-b-0"  # type: ignore[union-attr]
    assert store.get("key-c") is None
    with store.locked():
        assert store.remove("key-a")
        assert not store.remove("key-a")
    assert store.app_keys() == ["key-b"]
    with store.locked():
        store.remove("key-b")
    assert not store.path.exists()


def test_repr_never_shows_tokens() -> None:
    text = repr(_creds())
    assert "refresh-key-a" not in text and "access-key-a" not in text


def test_wider_mode_is_fixed_on_write_and_warned_on_read(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = CredentialsFile(tmp_path / "creds.json")
    with store.locked():
        store.put(_creds())
    os.chmod(store.path, 0o644)
    with caplog.at_level("WARNING"):
        store.get("key-a")
    assert "chmod 600" in caplog.text
    with store.locked():
        store.put(_creds(n=1))
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600


@pytest.mark.parametrize("content", ["", "{", "[]", '{"credentials": 3}', "null"])
def test_damaged_file_is_a_clear_error(tmp_path: Path, content: str) -> None:
    path = tmp_path / "creds.json"
    path.write_text(content)
    with pytest.raises(DropboxAuthError, match=r"remove .*creds\.json and run the command again"):
        CredentialsFile(path).get("key-a")


def test_entry_without_refresh_token_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "creds.json"
    path.write_text(json.dumps({"credentials": {"key-a": {"access_token": "x"}}}))
    with pytest.raises(DropboxAuthError, match="damaged"):
        CredentialsFile(path).get("key-a")


def test_parse_expiry_variants() -> None:
    want = datetime.datetime(2030, 1, 1, 12, 0, 0)
    for text in (
        "2030-01-01T12:00:00",
        "2030-01-01T12:00:00Z",
        "2030-01-01T12:00:00+00:00",
        "2030-01-01T14:00:00+02:00",
        " 2030-01-01 12:00:00 ",
    ):
        assert cred.parse_expiry(text) == want, text
    with pytest.raises(ValueError):
        cred.parse_expiry("tomorrow")


def _hammer(path: str, app_key: str, rounds: int) -> None:
    store = CredentialsFile(Path(path))
    for _ in range(rounds):
        with store.locked():
            current = store.get(app_key)
            counter = int(current.access_token.rsplit("-", 1)[1]) if current else 0  # type: ignore[union-attr]
            store.put(_creds(app_key, counter + 1))


def test_concurrent_threads_and_processes_never_lose_or_corrupt(tmp_path: Path) -> None:
    """Read-modify-write under the lock from 4 threads and 3 processes: no lost update."""
    path = tmp_path / "creds.json"
    rounds = 15
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_hammer, args=(str(path), "key-a", rounds)) for _ in range(3)]
    threads = [
        threading.Thread(target=_hammer, args=(str(path), key, rounds))
        for key in ("key-a", "key-a", "key-b", "key-b")
    ]
    for p in procs:
        p.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    store = CredentialsFile(path)
    assert store.get("key-a").access_token == f"access-key-a-{5 * rounds}"  # type: ignore[union-attr]
    assert store.get("key-b").access_token == f"access-key-b-{2 * rounds}"  # type: ignore[union-attr]
    json.loads(path.read_text())  # still one valid document


def test_lock_timeout_is_a_clear_error(tmp_path: Path) -> None:
    store = CredentialsFile(tmp_path / "creds.json", lock_timeout=0.2)
    holder = CredentialsFile(tmp_path / "creds.json")
    ready, done = threading.Event(), threading.Event()

    def hold() -> None:
        with holder.locked():
            ready.set()
            done.wait(30)

    thread = threading.Thread(target=hold)
    thread.start()
    try:
        assert ready.wait(30)
        with pytest.raises(DropboxAuthError, match="locked by another process"), store.locked():
            pass
    finally:
        done.set()
        thread.join(30)


def test_default_path_inside_repo_outside_repo_and_override(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(cred.ENV_CREDENTIALS_FILE, raising=False)
    repo = tmp_path / "repo"
    (repo / ".dvc").mkdir(parents=True)
    (repo / "sub" / "dir").mkdir(parents=True)
    assert cred.credentials_path(str(repo / "sub" / "dir")) == (
        repo / ".dvc" / "tmp" / "dropbox-user-credentials.json"
    )
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    outside = tmp_path / "outside"
    outside.mkdir()
    assert cred.credentials_path(str(outside)) == (
        tmp_path / "xdg" / "dvc-dropbox" / "dropbox-user-credentials.json"
    )
    monkeypatch.setenv(cred.ENV_CREDENTIALS_FILE, "rel/creds.json")
    assert cred.credentials_path(str(repo)) == repo / "rel" / "creds.json"
    monkeypatch.setenv(cred.ENV_CREDENTIALS_FILE, str(tmp_path / "abs.json"))
    assert cred.credentials_path(str(repo)) == tmp_path / "abs.json"


def test_git_ignore_status(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / ".gitignore").write_text("ignored.json\n")
    assert cred.git_ignore_status(tmp_path / "ignored.json") is True
    assert cred.git_ignore_status(tmp_path / "deep" / "creds.json") is False
    with caplog.at_level("WARNING"):
        cred.warn_if_not_git_ignored(tmp_path / "deep" / "creds.json")
        cred.warn_if_not_git_ignored(tmp_path / "ignored.json")
    assert caplog.text.count("NOT ignored") == 1


def _dvc_repo(path: Path) -> Path:
    from dvc.repo import Repo

    path.mkdir(parents=True)
    Repo.init(str(path), no_scm=True).close()
    return path


def test_relative_override_is_resolved_from_the_repository_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = _dvc_repo(tmp_path / "repo")
    (repo / "data" / "sub").mkdir(parents=True)
    monkeypatch.setenv(cred.ENV_CREDENTIALS_FILE, ".dvc/tmp/x.json")
    want = repo / ".dvc" / "tmp" / "x.json"
    for cwd in (repo, repo / "data", repo / "data" / "sub"):
        assert cred.credentials_path(str(cwd)) == want
        monkeypatch.chdir(cwd)
        assert cred.credentials_path() == want  # the working directory, as DVC finds it
    monkeypatch.setenv(cred.ENV_CREDENTIALS_FILE, "../outside.json")
    assert cred.credentials_path(str(repo / "data")) == tmp_path / "outside.json"
    # Outside any repository: from the working directory.
    outside = tmp_path / "outside"
    outside.mkdir()
    monkeypatch.setenv(cred.ENV_CREDENTIALS_FILE, "creds/x.json")
    assert cred.credentials_path(str(outside)) == outside / "creds" / "x.json"


def test_a_new_dvc_folder_is_never_created(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    monkeypatch.setenv(cred.ENV_CREDENTIALS_FILE, ".dvc/tmp/x.json")
    with pytest.raises(DropboxConfigError) as info:
        cred.credentials_path(str(outside))
    message = str(info.value)
    assert f"would create the folder {outside / '.dvc'}" in message
    assert f"take {outside} for a DVC repository" in message
    assert not (outside / ".dvc").exists()
    # Inside a repository, a `.dvc` below the root is refused too, whoever built the path.
    repo = _dvc_repo(tmp_path / "repo")
    monkeypatch.setenv(cred.ENV_CREDENTIALS_FILE, "sub/.dvc/x.json")
    with pytest.raises(DropboxConfigError, match=r"never creates a \.dvc folder"):
        cred.credentials_path(str(repo))
    store = CredentialsFile(repo / "sub" / ".dvc" / "tmp" / "x.json")
    with pytest.raises(DropboxConfigError, match="would create the folder"), store.locked():
        pass
    assert not (repo / "sub").exists()
    # An existing `.dvc` folder (the root's) is fine: only its `tmp` is created.
    store = CredentialsFile(repo / ".dvc" / "tmp" / "new" / "x.json")
    with store.locked():
        store.put(_creds())
    assert store.get("key-a") is not None


def test_a_file_inside_a_tracked_output_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = _dvc_repo(tmp_path / "repo")
    (repo / "data" / "sub").mkdir(parents=True)
    (repo / "data.dvc").write_text("outs:\n- path: data\n")
    # A pipeline output declared in a dvc.yaml with its own working directory.
    (repo / "pipe").mkdir()
    (repo / "pipe" / "dvc.yaml").write_text(
        "stages:\n  train:\n    wdir: ..\n    cmd: echo\n    outs:\n    - models\n"
    )
    cases = {
        "data/creds.json": ("data", "data.dvc"),
        "data/sub/new/creds.json": ("data", "data.dvc"),
        "models/creds.json": ("models", str(Path("pipe") / "dvc.yaml")),
    }
    for value, (output, dvcfile) in cases.items():
        monkeypatch.setenv(cred.ENV_CREDENTIALS_FILE, value)
        with pytest.raises(DropboxConfigError) as info:
            cred.credentials_path(str(repo / "data" / "sub"))
        message = str(info.value)
        assert f"inside '{output}', which DVC tracks ({dvcfile})" in message, message
        assert "Nothing was written" in message
        assert "DROPBOX_CREDENTIALS_FILE=.dvc/tmp/creds.json" in message
    # An absolute path into the same output is refused as well; neighbours are fine.
    monkeypatch.setenv(cred.ENV_CREDENTIALS_FILE, str(repo / "data" / "x.json"))
    with pytest.raises(DropboxConfigError, match="which DVC tracks"):
        cred.credentials_path(str(tmp_path))
    for fine in ("database/x.json", "secrets/x.json", ".dvc/tmp/x.json"):
        monkeypatch.setenv(cred.ENV_CREDENTIALS_FILE, fine)
        assert cred.credentials_path(str(repo / "data")) == repo / fine
    assert sorted(p.name for p in (repo / "data").iterdir()) == ["sub"]
