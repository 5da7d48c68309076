"""create_client against the emulator over real HTTPS: every credential source, refresh and
persistence, the errors users get, and one prompt per process however many threads ask."""

from __future__ import annotations

import datetime
import io
import json
import re
import stat
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from dvc_dropbox.auth import client as auth
from dvc_dropbox.auth import credentials, resolve
from dvc_dropbox.auth.credentials import Credentials, CredentialsFile
from dvc_dropbox.errors import DropboxAuthError, DropboxConfigError
from tests.helpers.emulator import EmulatorProcess
from tests.integration.auth.conftest import APP_KEY, approve

pytestmark = pytest.mark.usefixtures("clean_env")


def _iso(delta_s: float, tz: bool = True) -> str:
    when = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=delta_s)
    text = when.replace(microsecond=0).isoformat()
    return text if tz else text.replace("+00:00", "")


def _token_requests(emulator: EmulatorProcess) -> int:
    return int(emulator.stats()["requests"].get("oauth2/token", 0))


@pytest.fixture
def creds_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "creds" / "dropbox.json"
    monkeypatch.setenv("DROPBOX_CREDENTIALS_FILE", str(path))
    monkeypatch.chdir(tmp_path)
    return path


def _store(path: Path, tok: dict[str, Any], expires_at: str = "") -> None:
    store = CredentialsFile(path)
    with store.locked():
        store.put(
            Credentials(
                app_key=APP_KEY,
                refresh_token=tok["refresh_token"],
                access_token=tok["access_token"],
                expires_at=credentials.parse_expiry(expires_at or tok["expires_at"]),
                account_id=tok["account_id"],
            )
        )


# -- environment variables ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "combo",
    [
        "refresh",
        "access",
        "access+expires_naive",
        "access+expires_tz",
        "access+refresh",
        "access+expires_past+refresh",
        "all_three",
    ],
)
def test_env_combinations_work_and_are_never_written(
    emulator: EmulatorProcess, creds_file: Path, monkeypatch: pytest.MonkeyPatch, combo: str
) -> None:
    tok = emulator.token()
    parts = combo.split("+")
    if "refresh" in parts or combo == "all_three":
        monkeypatch.setenv("DROPBOX_REFRESH_TOKEN", tok["refresh_token"])
    if "access" in parts or combo == "all_three":
        monkeypatch.setenv("DROPBOX_ACCESS_TOKEN", tok["access_token"])
    if "expires_naive" in parts:
        monkeypatch.setenv("DROPBOX_EXPIRES_AT", _iso(3600, tz=False))
    if "expires_tz" in parts or combo == "all_three":
        monkeypatch.setenv("DROPBOX_EXPIRES_AT", tok["expires_at"])
    if "expires_past" in parts:
        monkeypatch.setenv("DROPBOX_EXPIRES_AT", _iso(-60, tz=False))
    before = _token_requests(emulator)
    refreshable = "refresh" in parts or combo == "all_three"
    client = auth.create_client(APP_KEY if refreshable else None)
    assert client.users_get_current_account().account_id == tok["account_id"]
    refreshed = _token_requests(emulator) - before
    # A refresh happens exactly when the SDK has no (valid) expiry for a refreshable token.
    expect_refresh = combo in ("refresh", "access+refresh", "access+expires_past+refresh")
    assert refreshed == (1 if expect_refresh else 0)
    assert not creds_file.exists(), "env credentials must never be written to disk"
    assert resolve.resolve_credentials(APP_KEY).source.kind == "env"


def test_env_refresh_token_with_app_key_from_env(
    emulator: EmulatorProcess, creds_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tok = emulator.token()
    monkeypatch.setenv("DROPBOX_REFRESH_TOKEN", tok["refresh_token"])
    monkeypatch.setenv("DROPBOX_APP_KEY", APP_KEY)
    client = auth.create_client()
    assert client.users_get_current_account().account_id == tok["account_id"]


def test_env_expired_access_token_without_refresh_fails_at_once(
    emulator: EmulatorProcess, creds_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tok = emulator.token()
    monkeypatch.setenv("DROPBOX_ACCESS_TOKEN", tok["access_token"])
    monkeypatch.setenv("DROPBOX_EXPIRES_AT", _iso(-60))
    with pytest.raises(DropboxAuthError) as info:
        auth.create_client(APP_KEY)
    text = str(info.value)
    assert "DROPBOX_EXPIRES_AT" in text and "DROPBOX_REFRESH_TOKEN" in text
    assert tok["access_token"] not in text


def test_env_access_token_expired_at_dropbox_says_so(
    emulator: EmulatorProcess, creds_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tok = emulator.token()
    emulator.control("POST", "tokens/expire", {"access_token": tok["access_token"]})
    monkeypatch.setenv("DROPBOX_ACCESS_TOKEN", tok["access_token"])
    client = auth.create_client()
    with pytest.raises(DropboxAuthError, match="expired and there is no DROPBOX_REFRESH_TOKEN"):
        client.users_get_current_account()


@pytest.mark.parametrize("value", ["tomorrow", "2030-13-01T00:00:00", "12:00"])
def test_env_malformed_expiry_is_a_clear_error(
    creds_file: Path, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("DROPBOX_ACCESS_TOKEN", "sl.secret-looking-token")
    monkeypatch.setenv("DROPBOX_EXPIRES_AT", value)
    with pytest.raises(DropboxConfigError, match="DROPBOX_EXPIRES_AT is not an ISO 8601") as info:
        auth.create_client()
    assert "secret-looking" not in str(info.value)


def test_env_refresh_token_without_app_key(
    creds_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DROPBOX_REFRESH_TOKEN", "r-secret")
    with pytest.raises(DropboxAuthError, match=r"app_key <app key>` or set DROPBOX_APP_KEY"):
        auth.create_client()


def test_env_expiry_alone_is_an_error(creds_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DROPBOX_EXPIRES_AT", _iso(60))
    with pytest.raises(DropboxConfigError, match="neither DROPBOX_ACCESS_TOKEN nor"):
        auth.create_client(APP_KEY)


def test_env_wins_over_file(
    emulator: EmulatorProcess, creds_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    in_file, in_env = emulator.token(), emulator.token()
    _store(creds_file, in_file)
    monkeypatch.setenv("DROPBOX_ACCESS_TOKEN", in_env["access_token"])
    client = auth.create_client(APP_KEY)
    assert client._oauth2_access_token == in_env["access_token"]
    assert "environment" in repr(client) and in_env["access_token"] not in repr(client)


def test_env_wrong_app_key(
    emulator: EmulatorProcess, creds_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tok = emulator.token()
    monkeypatch.setenv("DROPBOX_REFRESH_TOKEN", tok["refresh_token"])
    monkeypatch.setenv("DROPBOX_APP_KEY", "no-such-app")
    with pytest.raises(DropboxAuthError) as info:
        auth.create_client()
    text = str(info.value)
    assert "app key" in text and "DROPBOX_APP_KEY" in text
    assert tok["refresh_token"] not in text


# -- the credentials file ------------------------------------------------------------------------


def test_file_token_expired_at_dropbox_is_refreshed_and_saved(
    emulator: EmulatorProcess, creds_file: Path
) -> None:
    tok = emulator.token()
    _store(creds_file, tok)
    client = auth.create_client(APP_KEY)
    emulator.control("POST", "tokens/expire", {"access_token": tok["access_token"]})
    assert client.users_get_current_account().account_id == tok["account_id"]
    saved = json.loads(creds_file.read_text())["credentials"][APP_KEY]
    assert saved["access_token"] not in (None, tok["access_token"])
    assert saved["access_token"] == client._oauth2_access_token
    assert saved["refresh_token"] == tok["refresh_token"]
    assert stat.S_IMODE(creds_file.stat().st_mode) == 0o600


def test_file_token_due_is_renewed_eagerly_and_saved(
    emulator: EmulatorProcess, creds_file: Path
) -> None:
    tok = emulator.token()
    _store(creds_file, tok, expires_at=_iso(60))  # inside the SDK's 5-minute margin
    client = auth.create_client(APP_KEY)
    saved = json.loads(creds_file.read_text())["credentials"][APP_KEY]
    assert saved["access_token"] == client._oauth2_access_token != tok["access_token"]
    assert credentials.parse_expiry(saved["expires_at"]) > credentials._utc_now() + (
        datetime.timedelta(minutes=10)
    )


def test_many_threads_hitting_an_expired_token_refresh_once(
    emulator: EmulatorProcess, creds_file: Path
) -> None:
    tok = emulator.token()
    _store(creds_file, tok)
    client = auth.create_client(APP_KEY, max_connections=8)
    emulator.control("POST", "tokens/expire", {"access_token": tok["access_token"]})
    before = _token_requests(emulator)
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def work() -> None:
        try:
            start.wait(30)
            client.users_get_current_account()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    assert _token_requests(emulator) - before == 1


def test_other_process_refresh_is_reused(emulator: EmulatorProcess, creds_file: Path) -> None:
    """If the file already holds a newer token for the same grant, no second refresh happens."""
    tok = emulator.token()
    _store(creds_file, tok)
    client = auth.create_client(APP_KEY)
    # "Another process" renews and saves first.
    other = auth.create_client(APP_KEY)
    other._dvc_state = client._dvc_state.__class__(
        client._dvc_state.source, CredentialsFile(creds_file)
    )
    other.refresh_access_token()
    renewed = json.loads(creds_file.read_text())["credentials"][APP_KEY]["access_token"]
    emulator.control("POST", "tokens/expire", {"access_token": tok["access_token"]})
    before = _token_requests(emulator)
    client.users_get_current_account()
    assert _token_requests(emulator) == before
    assert client._oauth2_access_token == renewed


def test_file_revoked_refresh_token_says_remove_the_file(
    emulator: EmulatorProcess, creds_file: Path
) -> None:
    tok = emulator.token()
    _store(creds_file, tok, expires_at=_iso(-60))
    emulator.control("POST", "tokens/revoke", {"refresh_token": tok["refresh_token"]})
    with pytest.raises(DropboxAuthError) as info:
        auth.create_client(APP_KEY)
    text = str(info.value)
    assert "rejected the refresh token" in text and "revoked" in text
    assert f"remove {creds_file} and run the command again to re-authorize" in text
    for secret in (tok["access_token"], tok["refresh_token"]):
        assert secret not in text


def test_file_revoked_while_in_use(emulator: EmulatorProcess, creds_file: Path) -> None:
    tok = emulator.token()
    _store(creds_file, tok)
    client = auth.create_client(APP_KEY)
    emulator.control("POST", "tokens/revoke", {"refresh_token": tok["refresh_token"]})
    with pytest.raises(DropboxAuthError, match=re.escape(str(creds_file))):
        client.users_get_current_account()


def test_missing_scope_is_named(
    emulator: EmulatorProcess, creds_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tok = emulator.token(scopes=["account_info.read", "files.metadata.read"])
    monkeypatch.setenv("DROPBOX_ACCESS_TOKEN", tok["access_token"])
    client = auth.create_client()
    with pytest.raises(DropboxAuthError) as info:
        client.files_upload(b"x", "/auth-tests/scope.txt")
    text = str(info.value)
    assert "'files.content.write'" in text and "Permissions tab" in text
    assert "DROPBOX_ACCESS_TOKEN" in text


def test_invalid_access_token(
    creds_file: Path, monkeypatch: pytest.MonkeyPatch, emulator: EmulatorProcess
) -> None:
    monkeypatch.setenv("DROPBOX_ACCESS_TOKEN", "sl.not-a-real-token-0123456789")
    client = auth.create_client()
    with pytest.raises(DropboxAuthError) as info:
        client.users_get_current_account()
    assert "not-a-real-token" not in str(info.value)


def test_no_app_key_explains_how_to_make_one(creds_file: Path) -> None:
    with pytest.raises(DropboxConfigError) as info:
        auth.create_client(remote_name="myremote")
    text = str(info.value)
    assert "dvc remote modify myremote app_key <app key>" in text
    assert "Scoped access" in text and "files.content.write" in text
    assert "no redirect URI" in text


def test_no_terminal_fails_at_once_naming_three_ways(
    creds_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    with pytest.raises(DropboxAuthError) as info:
        auth.create_client(APP_KEY, remote_name="myremote")
    text = str(info.value)
    assert "stdin is not a terminal" in text
    assert "interactive terminal" in text
    assert "DROPBOX_REFRESH_TOKEN" in text
    assert "dvc-dropbox login myremote" in text and "dvc-dropbox export-env myremote" in text


class _FakeTerminal(io.StringIO):
    """stdin that is 'a terminal' and answers the prompt by approving the printed link."""

    def __init__(self, emulator: EmulatorProcess, printed: io.StringIO):
        super().__init__()
        self.emulator, self.printed, self.asked = emulator, printed, 0

    def isatty(self) -> bool:
        return True

    def readline(self, *args: Any) -> str:  # type: ignore[override]
        self.asked += 1
        url = re.findall(r"\n    (https://\S+)\n", self.printed.getvalue())[-1]
        return approve(self.emulator, url) + "\n"


def test_interactive_asks_once_for_many_threads(
    emulator: EmulatorProcess, creds_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    printed = io.StringIO()
    terminal = _FakeTerminal(emulator, printed)
    monkeypatch.setattr(sys, "stdin", terminal)
    monkeypatch.setattr(sys, "stderr", printed)
    clients: list[Any] = []
    errors: list[BaseException] = []

    def work() -> None:
        try:
            clients.append(auth.create_client(APP_KEY))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors and len(clients) == 6
    assert terminal.asked == 1
    assert printed.getvalue().count("Go to the following link in your browser:") == 1
    assert "Enter verification code: " in printed.getvalue()
    saved = json.loads(creds_file.read_text())["credentials"][APP_KEY]
    assert saved["refresh_token"] and saved["account_id"]
    assert stat.S_IMODE(creds_file.stat().st_mode) == 0o600
    clients[0].users_get_current_account()


def test_other_app_key_never_uses_anothers_entry(
    emulator: EmulatorProcess, creds_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _store(creds_file, emulator.token())
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    with pytest.raises(DropboxAuthError, match="stdin is not a terminal"):
        auth.create_client("another-app-key")
    assert CredentialsFile(creds_file).app_keys() == [APP_KEY]


def test_path_root_clone_keeps_source_and_persistence(
    emulator: EmulatorProcess, creds_file: Path
) -> None:
    tok = emulator.token()
    _store(creds_file, tok)
    client = auth.create_client(APP_KEY, path_root="home")
    assert isinstance(client, auth.DropboxClient)
    assert str(creds_file) in repr(client) and tok["access_token"] not in repr(client)
    emulator.control("POST", "tokens/expire", {"access_token": tok["access_token"]})
    client.users_get_current_account()
    saved = json.loads(creds_file.read_text())["credentials"][APP_KEY]
    assert saved["access_token"] == client._oauth2_access_token != tok["access_token"]
