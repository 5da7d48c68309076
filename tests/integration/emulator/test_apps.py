"""Apps like Dropbox's: every app has a secret, non-PKCE authorization needs it at the token
exchange and at every refresh of the token it gave; `/1/oauth2/token` works like
`/oauth2/token`; every request, unknown paths included, is counted."""

from __future__ import annotations

import subprocess
import sys
import urllib.parse
from pathlib import Path
from typing import Any

import dropbox
import pytest
import requests
from dropbox import exceptions, oauth

from tests.helpers.emulator import EmulatorProcess
from tests.integration.emulator.test_oauth import approve, token_request


def test_default_app_has_a_generated_secret_kept_across_restarts(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with EmulatorProcess(data_dir=data) as first:
        secret = first.env["DROPBOX_APP_SECRET"]
        assert len(secret) == 15 and secret.isalnum() and secret == secret.lower()
    with EmulatorProcess(data_dir=data) as again:
        assert again.env["DROPBOX_APP_SECRET"] == secret
    with EmulatorProcess("--app-key", "mine:given-secret") as given:
        assert given.env["DROPBOX_APP_KEY"] == "mine"
        assert given.env["DROPBOX_APP_SECRET"] == "given-secret"


def test_env_file_names_the_secret(tmp_path: Path) -> None:
    env_file = tmp_path / "emu.env"
    proc = subprocess.Popen(
        [sys.executable, "-m", "dropbox_emulator", "--env-file", str(env_file)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        proc.stdout.readline()
        lines = dict(line.split("=", 1) for line in env_file.read_text().splitlines())
        assert len(lines["DROPBOX_APP_SECRET"]) == 15
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_web_flow_without_pkce_needs_the_secret(emulator: EmulatorProcess) -> None:
    key, secret = emulator.env["DROPBOX_APP_KEY"], emulator.env["DROPBOX_APP_SECRET"]
    redirect_uri = "http://127.0.0.1:53682/callback"
    flow = oauth.DropboxOAuth2Flow(
        key, redirect_uri, {}, "csrf", consumer_secret=secret, token_access_type="offline"
    )
    authorize_url = flow.start(url_state="s")
    assert "code_challenge" not in authorize_url
    resp = approve(emulator, authorize_url)
    assert resp.status_code == 302  # accepted, as Dropbox does for an app with a secret
    query = urllib.parse.urlsplit(resp.headers["Location"]).query
    params = {k: v[0] for k, v in urllib.parse.parse_qs(query).items()}

    # The code alone is not enough: without PKCE the exchange needs the secret.
    refused = token_request(
        emulator,
        grant_type="authorization_code",
        code=params["code"],
        client_id=key,
        redirect_uri=redirect_uri,
    )
    assert refused.status_code in (400, 401) and refused.json()["error"] == "invalid_client"


def test_non_pkce_tokens_refresh_only_with_the_secret(emulator: EmulatorProcess) -> None:
    key, secret = emulator.env["DROPBOX_APP_KEY"], emulator.env["DROPBOX_APP_SECRET"]
    redirect_uri = "http://127.0.0.1:53682/callback"
    flow = oauth.DropboxOAuth2Flow(
        key, redirect_uri, {}, "csrf", consumer_secret=secret, token_access_type="offline"
    )
    resp = approve(emulator, flow.start(url_state="s"))
    query = urllib.parse.urlsplit(resp.headers["Location"]).query
    result = flow.finish({k: v[0] for k, v in urllib.parse.parse_qs(query).items()})
    assert result.refresh_token

    without = dropbox.Dropbox(
        oauth2_refresh_token=result.refresh_token, app_key=key, max_retries_on_error=0
    )
    with pytest.raises((requests.HTTPError, exceptions.AuthError, exceptions.BadInputError)):
        without.refresh_access_token()
    with_secret = dropbox.Dropbox(
        oauth2_refresh_token=result.refresh_token,
        app_key=key,
        app_secret=secret,
        max_retries_on_error=0,
    )
    with_secret.refresh_access_token()
    assert with_secret.check_user("ok").result == "ok"

    # A PKCE-granted token (the control API's default) refreshes without the secret.
    pkce = emulator.token()["refresh_token"]
    public = dropbox.Dropbox(oauth2_refresh_token=pkce, app_key=key, max_retries_on_error=0)
    public.refresh_access_token()
    assert public.check_user("pkce").result == "pkce"
    # And one the control API marks as non-PKCE behaves like the web flow's.
    marked = emulator.token(pkce=False)["refresh_token"]
    refused = token_request(
        emulator, grant_type="refresh_token", refresh_token=marked, client_id=key
    )
    assert refused.json()["error"] == "invalid_client"
    accepted = token_request(
        emulator, auth=(key, secret), grant_type="refresh_token", refresh_token=marked
    )
    assert accepted.status_code == 200 and accepted.json()["access_token"]


def test_v1_token_path_and_unknown_paths_are_counted(emulator: EmulatorProcess) -> None:
    key = emulator.env["DROPBOX_APP_KEY"]
    refresh = emulator.token()["refresh_token"]
    before = emulator.stats()["requests"]
    reply = requests.post(
        f"{emulator.url}/1/oauth2/token",
        data={"grant_type": "refresh_token", "refresh_token": refresh, "client_id": key},
        verify=emulator.ca_bundle,
        timeout=60,
    )
    assert reply.status_code == 200 and reply.json()["access_token"].startswith("sl.")
    dbx = dropbox.Dropbox(oauth2_access_token=reply.json()["access_token"])
    assert dbx.check_user("v1").result == "v1"
    unknown = requests.post(
        f"{emulator.url}/2/files/no_such_route",
        data=b"{}",
        headers={"Content-Type": "application/json"},
        verify=emulator.ca_bundle,
        timeout=60,
    )
    assert unknown.status_code == 400
    elsewhere = requests.get(f"{emulator.url}/3/nowhere", verify=emulator.ca_bundle, timeout=60)
    assert elsewhere.status_code == 400
    after: dict[str, Any] = emulator.stats()["requests"]
    for name in ("1/oauth2/token", "files/no_such_route", "3/nowhere"):
        assert after.get(name, 0) == before.get(name, 0) + 1, name
