"""OAuth 2 against the emulator: the SDK's PKCE no-redirect flow and web flow end to end, the
authorize page's validation, the token endpoint's grants and errors, auto-approve, expiry."""

from __future__ import annotations

import base64
import hashlib
import html
import re
import time
import urllib.parse
from typing import Any, Optional

import dropbox
import pytest
import requests
from dropbox import exceptions, oauth

from tests.helpers.emulator import EmulatorProcess

SCOPES = ["account_info.read", "files.metadata.read", "files.content.read"]
_FORM = re.compile(r'<form method="post" action="([^"]+)"')
_CODE = re.compile(r'<code id="auth-code">([^<]+)</code>')


def approve(emu: EmulatorProcess, authorize_url: str, decision: str = "allow") -> requests.Response:
    """What a user does in the browser: open the page, press Allow (or Deny)."""
    page = requests.get(authorize_url, verify=emu.ca_bundle, timeout=60)
    assert page.status_code == 200, page.text
    assert page.headers["Content-Type"].startswith("text/html")
    actions = _FORM.findall(page.text)
    assert len(actions) == 2  # Allow and Deny
    action = urllib.parse.urljoin(emu.url, html.unescape(actions[0]))
    return requests.post(
        action,
        data={"decision": decision},
        verify=emu.ca_bundle,
        timeout=60,
        allow_redirects=False,
    )


def code_on(page: requests.Response) -> Optional[str]:
    found = _CODE.search(page.text)
    return html.unescape(found.group(1)) if found else None


def token_request(emu: EmulatorProcess, auth: Any = None, **form: str) -> requests.Response:
    return requests.post(
        f"{emu.url}/oauth2/token", data=form, auth=auth, verify=emu.ca_bundle, timeout=60
    )


def challenge_for(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


# -- the SDK's flows -----------------------------------------------------------------------------


def test_pkce_no_redirect_flow_end_to_end(emulator: EmulatorProcess) -> None:
    app_key = emulator.env["DROPBOX_APP_KEY"]
    flow = oauth.DropboxOAuth2FlowNoRedirect(
        app_key, use_pkce=True, token_access_type="offline", scope=SCOPES
    )
    url = flow.start()
    assert url.startswith(f"{emulator.url}/oauth2/authorize?")
    page = approve(emulator, url)
    assert page.status_code == 200
    code = code_on(page)
    assert code

    result = flow.finish(code)
    assert result.access_token and result.refresh_token
    assert len(result.account_id) == 40 and result.user_id
    assert set(result.scope.split()) == set(SCOPES)
    assert result.expires_at > dropbox.dropbox_client.datetime.utcnow()

    # A long-running client from the refresh token alone: it refreshes on its first call.
    dbx = dropbox.Dropbox(oauth2_refresh_token=result.refresh_token, app_key=app_key)
    assert dbx.users_get_current_account().account_id == result.account_id
    # The granted scopes are enforced.
    with pytest.raises(exceptions.AuthError) as err:
        dbx.files_upload(b"x", "/oauth/denied.txt")
    assert err.value.error.get_missing_scope().required_scope == "files.content.write"

    # Codes are single-use.
    with pytest.raises(requests.HTTPError) as http_err:
        flow.finish(code)
    assert http_err.value.response.status_code == 400
    assert http_err.value.response.json()["error"] == "invalid_grant"


def test_online_access_has_no_refresh_token(emulator: EmulatorProcess) -> None:
    flow = oauth.DropboxOAuth2FlowNoRedirect(
        emulator.env["DROPBOX_APP_KEY"], use_pkce=True, token_access_type="online"
    )
    result = flow.finish(code_on(approve(emulator, flow.start())))
    assert result.refresh_token == ""
    dbx = dropbox.Dropbox(oauth2_access_token=result.access_token)
    assert dbx.check_user("online").result == "online"


def test_deny_shows_no_code(emulator: EmulatorProcess) -> None:
    flow = oauth.DropboxOAuth2FlowNoRedirect(emulator.env["DROPBOX_APP_KEY"], use_pkce=True)
    page = approve(emulator, flow.start(), decision="deny")
    assert page.status_code == 200
    assert code_on(page) is None


def test_web_flow_with_redirect(emulator: EmulatorProcess) -> None:
    session: dict[str, Any] = {}
    redirect_uri = "http://127.0.0.1:53682/callback"
    flow = oauth.DropboxOAuth2Flow(
        emulator.env["DROPBOX_APP_KEY"],
        redirect_uri,
        session,
        "csrf",
        use_pkce=True,
        token_access_type="offline",
    )
    resp = approve(emulator, flow.start(url_state="my-state"))
    assert resp.status_code == 302
    location = urllib.parse.urlsplit(resp.headers["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == redirect_uri
    params = {k: v[0] for k, v in urllib.parse.parse_qs(location.query).items()}
    result = flow.finish(params)
    assert result.url_state == "my-state"
    assert result.refresh_token
    assert dropbox.Dropbox(oauth2_access_token=result.access_token).check_user("w").result == "w"


def test_web_flow_denied(emulator: EmulatorProcess) -> None:
    session: dict[str, Any] = {}
    flow = oauth.DropboxOAuth2Flow(
        emulator.env["DROPBOX_APP_KEY"],
        "http://localhost:8765/cb",
        session,
        "csrf",
        use_pkce=True,
    )
    resp = approve(emulator, flow.start(), decision="deny")
    assert resp.status_code == 302
    query = urllib.parse.urlsplit(resp.headers["Location"]).query
    params = {k: v[0] for k, v in urllib.parse.parse_qs(query).items()}
    assert params["error"] == "access_denied"
    with pytest.raises(oauth.NotApprovedException):
        flow.finish(params)


# -- authorize validation ------------------------------------------------------------------------


def _authorize_url(emu: EmulatorProcess, **params: str) -> str:
    base = {
        "response_type": "code",
        "client_id": emu.env["DROPBOX_APP_KEY"],
        "code_challenge": challenge_for("v" * 64),
        "code_challenge_method": "S256",
    }
    base.update(params)
    return f"{emu.url}/oauth2/authorize?" + urllib.parse.urlencode(
        {k: v for k, v in base.items() if v != "<omit>"}
    )


@pytest.mark.parametrize(
    "params",
    [
        {"client_id": "unknown-app"},
        {"response_type": "token"},
        {"response_type": "<omit>"},
        {"redirect_uri": "https://evil.example.com/cb"},
        {"redirect_uri": "ftp://127.0.0.1/cb"},
        {"token_access_type": "forever"},
        {"code_challenge_method": "MD5"},
        {"code_challenge": "short"},
        {"scope": "files.content.read no.such.scope"},
        {"state": "s" * 501},
    ],
)
def test_authorize_rejects_bad_requests(emulator: EmulatorProcess, params: dict[str, str]) -> None:
    resp = requests.get(_authorize_url(emulator, **params), verify=emulator.ca_bundle, timeout=60)
    assert resp.status_code == 400
    assert "auth-code" not in resp.text and "<form" not in resp.text


def test_authorize_post_needs_decision(emulator: EmulatorProcess) -> None:
    resp = requests.post(
        _authorize_url(emulator),
        data={"decision": "maybe"},
        verify=emulator.ca_bundle,
        timeout=60,
    )
    assert resp.status_code == 400


# -- token endpoint ------------------------------------------------------------------------------


def _code(emu: EmulatorProcess, verifier: str, **params: str) -> str:
    page = requests.post(
        _authorize_url(emu, code_challenge=challenge_for(verifier), **params),
        data={"decision": "allow"},
        verify=emu.ca_bundle,
        timeout=60,
    )
    code = code_on(page)
    assert code, page.text
    return code


def test_wrong_verifier_is_invalid_grant(emulator: EmulatorProcess) -> None:
    code = _code(emulator, "a" * 60)
    resp = token_request(
        emulator,
        grant_type="authorization_code",
        code=code,
        client_id=emulator.env["DROPBOX_APP_KEY"],
        code_verifier="b" * 60,
    )
    assert resp.status_code == 400
    assert resp.headers["Content-Type"] == "application/json"
    assert resp.json()["error"] == "invalid_grant"


@pytest.mark.parametrize(
    ("form", "error"),
    [
        ({"grant_type": "password"}, "unsupported_grant_type"),
        ({}, "invalid_request"),
        ({"grant_type": "authorization_code"}, "invalid_request"),
        (
            {"grant_type": "authorization_code", "code": "nope", "code_verifier": "x" * 50},
            "invalid_grant",
        ),
        ({"grant_type": "refresh_token", "refresh_token": "nope"}, "invalid_grant"),
        ({"grant_type": "refresh_token"}, "invalid_request"),
    ],
)
def test_token_endpoint_errors(emulator: EmulatorProcess, form: dict[str, str], error: str) -> None:
    resp = token_request(emulator, client_id=emulator.env["DROPBOX_APP_KEY"], **form)
    assert resp.status_code == 400
    assert resp.json()["error"] == error


def test_refresh_grant_down_scopes(emulator: EmulatorProcess) -> None:
    issued = emulator.token()
    resp = token_request(
        emulator,
        grant_type="refresh_token",
        refresh_token=issued["refresh_token"],
        client_id=emulator.env["DROPBOX_APP_KEY"],
        scope="files.metadata.read",
    )
    assert resp.status_code == 200
    body = resp.json()
    assert body["token_type"] == "bearer" and body["expires_in"] > 0
    assert body["scope"] == "files.metadata.read"
    dbx = dropbox.Dropbox(oauth2_access_token=body["access_token"])
    dbx.files_list_folder("")
    with pytest.raises(exceptions.AuthError):
        dbx.check_user()
    # Asking for more than was granted is refused.
    narrow = emulator.token(scopes=["files.metadata.read"])
    resp = token_request(
        emulator,
        grant_type="refresh_token",
        refresh_token=narrow["refresh_token"],
        client_id=emulator.env["DROPBOX_APP_KEY"],
        scope="files.content.write",
    )
    assert resp.status_code == 400 and resp.json()["error"] == "invalid_scope"


def test_refresh_token_of_another_app(monkeypatch: pytest.MonkeyPatch) -> None:
    with EmulatorProcess("--app-key", "first", "--app-key", "second") as emu:
        issued = emu.token(app_key="first")
        resp = token_request(
            emu,
            grant_type="refresh_token",
            refresh_token=issued["refresh_token"],
            client_id="second",
        )
        assert resp.status_code == 400 and resp.json()["error"] == "invalid_grant"


def test_sdk_refreshes_when_the_token_is_about_to_expire(emulator: EmulatorProcess) -> None:
    issued = emulator.token()
    soon = dropbox.dropbox_client.datetime.utcnow()  # within the SDK's 5-minute window
    dbx = dropbox.Dropbox(
        oauth2_access_token=issued["access_token"],
        oauth2_refresh_token=issued["refresh_token"],
        oauth2_access_token_expiration=soon,
        app_key=emulator.env["DROPBOX_APP_KEY"],
    )
    assert dbx.check_user("x").result == "x"
    assert dbx._oauth2_access_token != issued["access_token"]


# -- an app with a secret, auto-approve, short-lived tokens --------------------------------------


def test_auto_approve_and_app_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    with EmulatorProcess(
        "--auto-approve", "--app-key", "withsecret:s3cr3t", "--token-ttl", "1"
    ) as emu:
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", emu.ca_bundle)
        assert emu.env["DROPBOX_APP_KEY"] == "withsecret"
        url = _authorize_url(
            emu,
            code_challenge="<omit>",
            code_challenge_method="<omit>",
            token_access_type="offline",
        )
        page = requests.get(url, verify=emu.ca_bundle, timeout=60)
        assert "<form" not in page.text  # no consent page: approved at once
        code = code_on(page)
        assert code

        wrong = token_request(
            emu,
            grant_type="authorization_code",
            code=code,
            client_id="withsecret",
            client_secret="wrong",
        )
        assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_client"

        code = code_on(requests.get(url, verify=emu.ca_bundle, timeout=60))
        assert code
        resp = token_request(
            emu, auth=("withsecret", "s3cr3t"), grant_type="authorization_code", code=code
        )
        assert resp.status_code == 200, resp.text
        body = resp.json()
        assert body["expires_in"] == 1 and body["refresh_token"] and body["uid"]

        # --token-ttl: after a second the access token answers expired_access_token.
        time.sleep(1.5)
        resp = requests.post(
            f"{emu.url}/2/check/user",
            json={"query": ""},
            headers={"Authorization": f"Bearer {body['access_token']}"},
            verify=emu.ca_bundle,
            timeout=60,
        )
        assert resp.status_code == 401
        assert resp.json()["error"] == {".tag": "expired_access_token"}

        refreshed = token_request(
            emu,
            grant_type="refresh_token",
            refresh_token=body["refresh_token"],
            client_id="withsecret",
            client_secret="s3cr3t",
        )
        assert refreshed.status_code == 200

        # App-auth routes (check/app) take HTTP Basic app_key:app_secret.
        app = dropbox.Dropbox(app_key="withsecret", app_secret="s3cr3t", max_retries_on_error=0)
        for key in list(app._host_map):
            app._host_map[key] = emu.env["DROPBOX_API_HOST"]
        assert app.check_app("app auth").result == "app auth"
        wrong = dropbox.Dropbox(app_key="withsecret", app_secret="nope", max_retries_on_error=0)
        wrong._host_map = dict(app._host_map)
        with pytest.raises(exceptions.BadInputError):
            wrong.check_app("x")
