"""The credentials file on Windows: a file open in another process cannot be replaced or deleted.

Windows refuses `os.replace` onto (and `unlink` of) a file another process holds open, with
PermissionError: a `dvc` reading its credentials at start-up, an antivirus scan. The writer that
refreshed a token must not lose it to that moment. These tests play Windows' refusal (a patched
`os.replace`/`unlink`, with the module's Windows switch on) on any platform.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable

import pytest

from dvc_dropbox.auth import credentials
from dvc_dropbox.auth.credentials import Credentials, CredentialsFile


def _creds(app_key: str = "app-1") -> Credentials:
    return Credentials(app_key=app_key, refresh_token="refresh-secret", account_id="dbid:1")


def _refusing(real: Callable[..., Any], times: int, calls: list[int]) -> Callable[..., Any]:
    """`real`, refused `times` times first as Windows refuses a file open elsewhere."""

    def call(*args: Any) -> Any:
        calls.append(1)
        if len(calls) <= times:
            raise PermissionError(13, "The process cannot access the file because it is being used")
        return real(*args)

    return call


@pytest.fixture
def windows(monkeypatch: pytest.MonkeyPatch) -> None:
    # raising=False: on a checkout without the switch the test runs (and fails) all the same.
    monkeypatch.setattr(credentials, "RETRY_WHEN_OPEN_ELSEWHERE", True, raising=False)
    monkeypatch.setattr(credentials, "OPEN_ELSEWHERE_PAUSE_S", 0.001, raising=False)


def test_a_replace_refused_while_the_file_is_open_elsewhere_is_tried_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, windows: None
) -> None:
    store = CredentialsFile(tmp_path / "creds.json")
    with store.locked():
        store.put(_creds("app-1"))
    calls: list[int] = []
    monkeypatch.setattr(os, "replace", _refusing(os.replace, 3, calls))
    with store.locked():
        store.put(_creds("app-2"))  # a reader had the file open for the first three tries
    assert len(calls) == 4
    assert store.app_keys() == ["app-1", "app-2"]
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_a_delete_refused_while_the_file_is_open_elsewhere_is_tried_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, windows: None
) -> None:
    store = CredentialsFile(tmp_path / "creds.json")
    with store.locked():
        store.put(_creds("app-1"))
    calls: list[int] = []
    monkeypatch.setattr(Path, "unlink", _refusing(Path.unlink, 2, calls))
    with store.locked():
        assert store.remove("app-1")  # the last entry: the file goes
    assert len(calls) == 3
    assert not store.path.exists()


def test_a_file_that_stays_open_elsewhere_fails_after_a_bounded_wait(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, windows: None
) -> None:
    store = CredentialsFile(tmp_path / "creds.json")
    calls: list[int] = []
    monkeypatch.setattr(os, "replace", _refusing(os.replace, 10**6, calls))
    with pytest.raises(PermissionError), store.locked():
        store.put(_creds())
    assert len(calls) == credentials.OPEN_ELSEWHERE_TRIES
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []
    # Off Windows a PermissionError is a folder that is not writable: final at once.
    monkeypatch.setattr(credentials, "RETRY_WHEN_OPEN_ELSEWHERE", False)
    calls.clear()
    with pytest.raises(PermissionError), store.locked():
        store.put(_creds())
    assert len(calls) == 1
