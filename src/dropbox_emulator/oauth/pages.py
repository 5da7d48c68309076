"""OAuth 2 as Dropbox does it (dropbox-api.md §5): the authorize page on the "web host" and the
token endpoint on the "api host".

* `GET /oauth2/authorize?response_type=code&client_id=KEY[&token_access_type=offline]
  [&code_challenge=C&code_challenge_method=S256][&scope=...][&state=...][&redirect_uri=...]`
  shows an Allow/Deny page (with `--auto-approve`, it answers as if Allow was pressed).
* `POST /oauth2/authorize` with the same query plus `decision=allow|deny` shows the code in
  `<code id="auth-code">…</code>`, or redirects (302) to `redirect_uri?code=…&state=…`
  (`error=access_denied` on deny). Redirect URIs must point at 127.0.0.1 or localhost.
* `POST /oauth2/token` (and `/1/oauth2/token`, the path older clients such as rclone 1.60 use):
  `authorization_code` (PKCE `code_verifier`, or the app secret, in the form or as HTTP Basic)
  and `refresh_token`. Every app has a secret (`oauth.apps`); an authorize request without PKCE
  is accepted, and then the code exchange needs the secret, and so does every refresh of the
  token it gave (tokens remember whether PKCE was used).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import html
import re
import urllib.parse
from typing import TYPE_CHECKING, Any, Optional

from dropbox_emulator.exchange import Request, Response
from dropbox_emulator.handlers.catalogue import ALL_SCOPES
from dropbox_emulator.oauth.tokens import AuthCode, TokenProblem, scope_text
from dropbox_emulator.state.account import ACCOUNT_ID, ACCOUNT_UID

if TYPE_CHECKING:
    from dropbox_emulator.runtime import Runtime

TOKEN_ACCESS_TYPES = ("online", "offline", "legacy")
_CHALLENGE = re.compile(r"[A-Za-z0-9._~-]{43,128}")
_LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")

PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title} - dropbox-emulator</title></head>
<body>
<h1>{title}</h1>
{content}
<p><small>dropbox-emulator: a local stand-in for Dropbox, not Dropbox.</small></p>
</body></html>
"""


class AuthorizeProblem(Exception):
    pass


def _page(status: int, title: str, content: str, **headers: str) -> Response:
    text = PAGE.format(title=html.escape(title), content=content)
    return Response.html(status, text, **headers)


def _json_error(error: str, description: str, status: int = 400) -> Response:
    return Response.json(status, {"error": error, "error_description": description})


def pkce_ok(verifier: str, challenge: str, method: Optional[str]) -> bool:
    if (method or "plain") == "S256":
        digest = hashlib.sha256(verifier.encode("ascii", "replace")).digest()
        expected = base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")
    else:
        expected = verifier
    return hmac.compare_digest(expected, challenge)


def handle(runtime: Runtime, request: Request) -> Response:
    name = request.path.strip("/")
    runtime.stats.request(name)
    fault = runtime.faults.take(name)
    if fault is not None:
        if fault.status == 429:
            return Response.json(
                429,
                {"error": "too_many_requests", "error_description": "injected fault"},
                **{"Retry-After": str(fault.retry_after)},
            )
        return Response.text(fault.status, f"Injected fault: HTTP {fault.status}")
    if name == "oauth2/authorize":
        return authorize(runtime, request)
    if name in ("oauth2/token", "1/oauth2/token"):  # the v1 path older clients (rclone 1.60) use
        if request.method != "POST":
            return _json_error("invalid_request", "use POST")
        return token(runtime, request)
    return Response.text(400, f'Unknown API function: "{name}"')


# -- authorize -----------------------------------------------------------------------------


def _params(request: Request) -> dict[str, str]:
    params = {k: v[0] for k, v in request.query.items() if v}
    if request.method == "POST" and request.body:
        form = urllib.parse.parse_qs(
            request.body.decode("utf-8", "replace"), keep_blank_values=True
        )
        params.update({k: v[0] for k, v in form.items() if v})
    return params


def _validate(runtime: Runtime, params: dict[str, str]) -> AuthCode:
    if params.get("response_type") != "code":
        raise AuthorizeProblem('"response_type" must be "code".')
    client_id = params.get("client_id", "")
    if client_id not in runtime.apps:
        raise AuthorizeProblem("Invalid client_id: this app key is not registered.")
    redirect_uri = params.get("redirect_uri") or None
    if redirect_uri is not None:
        parts = urllib.parse.urlsplit(redirect_uri)
        if parts.scheme not in ("http", "https") or parts.hostname not in _LOOPBACK_HOSTS:
            raise AuthorizeProblem(
                "Invalid redirect_uri: only http(s) URIs on 127.0.0.1 or localhost are allowed."
            )
    access_type = params.get("token_access_type") or "online"
    if access_type not in TOKEN_ACCESS_TYPES:
        raise AuthorizeProblem('"token_access_type" must be "online", "offline" or "legacy".')
    challenge = params.get("code_challenge") or None
    method = params.get("code_challenge_method") or None
    if challenge is not None:
        if not _CHALLENGE.fullmatch(challenge):
            raise AuthorizeProblem('"code_challenge" must be 43-128 URL-safe characters.')
        if (method or "plain") not in ("S256", "plain"):
            raise AuthorizeProblem('"code_challenge_method" must be "S256" or "plain".')
    elif method is not None:
        raise AuthorizeProblem('"code_challenge_method" needs "code_challenge".')
    if len(params.get("state", "").encode()) > 500:
        raise AuthorizeProblem('"state" must be at most 500 bytes.')
    requested = frozenset(params.get("scope", "").split())
    unknown = requested - ALL_SCOPES
    if unknown:
        raise AuthorizeProblem(f"Invalid scope: {' '.join(sorted(unknown))}")
    return AuthCode(
        app_key=client_id,
        scopes=requested or ALL_SCOPES,
        account_id=ACCOUNT_ID,
        token_access_type=access_type,
        code_challenge=challenge,
        code_challenge_method=(method or "plain") if challenge else None,
        redirect_uri=redirect_uri,
    )


def authorize(runtime: Runtime, request: Request) -> Response:
    params = _params(request)
    try:
        grant = _validate(runtime, params)
    except AuthorizeProblem as problem:
        return _page(400, "Invalid authorization request", f"<p>{html.escape(str(problem))}</p>")
    if request.method == "GET" and not runtime.config.auto_approve:
        return _consent_page(request, grant)
    if request.method not in ("GET", "POST"):
        return _page(400, "Invalid authorization request", "<p>Use GET or POST.</p>")
    decision = "allow" if request.method == "GET" else params.get("decision", "")
    if decision not in ("allow", "deny"):
        return _page(
            400, "Invalid authorization request", '<p>"decision" must be allow or deny.</p>'
        )
    state = params.get("state")
    if decision == "deny":
        if grant.redirect_uri:
            return _redirect(
                grant.redirect_uri,
                {
                    "error": "access_denied",
                    "error_description": "The user chose not to give your app access.",
                    "state": state,
                },
            )
        return _page(200, "Access denied", "<p>You did not give the app access.</p>")
    code = runtime.tokens.new_code(grant)
    if grant.redirect_uri:
        return _redirect(grant.redirect_uri, {"code": code, "state": state})
    return _page(
        200,
        "Enter this code into the app",
        f'<p>Authorization code:</p>\n<p><code id="auth-code">{html.escape(code)}</code></p>',
    )


def _redirect(uri: str, params: dict[str, Optional[str]]) -> Response:
    query = urllib.parse.urlencode({k: v for k, v in params.items() if v is not None})
    target = uri + ("&" if urllib.parse.urlsplit(uri).query else "?") + query
    return Response(302, b"", "text/plain; charset=utf-8", {"Location": target})


def _consent_page(request: Request, grant: AuthCode) -> Response:
    action = "/oauth2/authorize?" + urllib.parse.urlencode(
        [(k, v) for k, values in request.query.items() for v in values]
    )
    scopes = "".join(f"<li>{html.escape(s)}</li>" for s in sorted(grant.scopes))
    forms = "".join(
        f'<form method="post" action="{html.escape(action)}" style="display:inline">'
        f'<input type="hidden" name="decision" value="{decision}">'
        f'<button type="submit" id="{decision}" name="submit" value="{decision}">{label}'
        "</button></form>\n"
        for decision, label in (("allow", "Allow"), ("deny", "Deny"))
    )
    content = (
        f"<p>The app <strong>{html.escape(grant.app_key)}</strong> would like access "
        f"({html.escape(grant.token_access_type)}) to:</p>\n<ul>{scopes}</ul>\n{forms}"
    )
    return _page(200, "Authorize app", content)


# -- token ---------------------------------------------------------------------------------


def _client(request: Request, form: dict[str, str]) -> tuple[str, Optional[str]]:
    """(client_id, client_secret) from the form or an HTTP Basic header."""
    header = request.headers.get("authorization", "")
    scheme, _, credential = header.partition(" ")
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(credential.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            raise TokenProblem("invalid_client", "malformed HTTP Basic credentials") from None
        key, _, secret = decoded.partition(":")
        return key, secret
    return form.get("client_id", ""), form.get("client_secret")


def token(runtime: Runtime, request: Request) -> Response:
    form = {
        k: v[0]
        for k, v in urllib.parse.parse_qs(
            request.body.decode("utf-8", "replace"), keep_blank_values=True
        ).items()
        if v
    }
    for key, values in request.query.items():  # Dropbox also takes them as URL parameters
        form.setdefault(key, values[0])
    try:
        grant_type = form.get("grant_type")
        if grant_type == "authorization_code":
            return _code_grant(runtime, request, form)
        if grant_type == "refresh_token":
            return _refresh_grant(runtime, request, form)
        if not grant_type:
            return _json_error("invalid_request", 'No "grant_type" given.')
        return _json_error("unsupported_grant_type", f'Unsupported grant_type "{grant_type}".')
    except TokenProblem as problem:
        # Dropbox answers every token-endpoint error, invalid_client included, with 400
        # (dropbox-api.md §5.2); SDKs < 12.2 cannot decode `invalid_client` in a 401.
        return _json_error(problem.tag, problem.description or problem.tag)


def _code_grant(runtime: Runtime, request: Request, form: dict[str, str]) -> Response:
    code = form.get("code")
    if not code:
        return _json_error("invalid_request", 'No "code" given.')
    app_key, secret = _client(request, form)
    has_secret = runtime.apps.check_secret(app_key, secret)
    grant = runtime.tokens.use_code(code)
    if grant.app_key != app_key:
        raise TokenProblem("invalid_grant", "code was issued to another app")
    if grant.redirect_uri and form.get("redirect_uri") != grant.redirect_uri:
        raise TokenProblem("invalid_grant", "redirect_uri mismatch")
    verifier = form.get("code_verifier")
    challenge = grant.code_challenge
    pkce = challenge is not None and verifier is not None
    if challenge is not None and verifier is not None:
        if not pkce_ok(verifier, challenge, grant.code_challenge_method):
            raise TokenProblem("invalid_grant", "invalid code verifier")
    elif grant.code_challenge is not None and not has_secret:
        raise TokenProblem("invalid_grant", "code verifier required")
    elif grant.code_challenge is None and not has_secret:
        raise TokenProblem("invalid_client", "client_secret required")
    issued = runtime.tokens.issue(
        app_key,
        grant.scopes,
        runtime.config.token_ttl,
        offline=grant.token_access_type == "offline",
        account_id=grant.account_id,
        pkce=pkce,
    )
    body: dict[str, Any] = {
        "access_token": issued.access_token,
        "token_type": "bearer",
        "expires_in": int(runtime.config.token_ttl),
        "scope": scope_text(issued.scopes),
        "account_id": issued.account_id,
        "uid": ACCOUNT_UID,
    }
    if issued.refresh_token:
        body["refresh_token"] = issued.refresh_token
    return Response.json(200, body)


def _refresh_grant(runtime: Runtime, request: Request, form: dict[str, str]) -> Response:
    refresh_token = form.get("refresh_token")
    if not refresh_token:
        return _json_error("invalid_request", 'No "refresh_token" given.')
    app_key, secret = _client(request, form)
    with_secret = runtime.apps.check_secret(app_key, secret)
    scopes = frozenset(form["scope"].split()) if form.get("scope") else None
    issued = runtime.tokens.refresh(
        refresh_token, app_key, runtime.config.token_ttl, scopes, with_secret=with_secret
    )
    return Response.json(
        200,
        {
            "access_token": issued.access_token,
            "token_type": "bearer",
            "expires_in": int(runtime.config.token_ttl),
            "scope": scope_text(issued.scopes),
        },
    )
