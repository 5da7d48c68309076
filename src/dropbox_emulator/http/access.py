"""Who is calling: the `Authorization` header of an API request checked as Dropbox does.

Missing or malformed credentials are 400 text; unknown, revoked or expired tokens are 401
`invalid_access_token` / `expired_access_token`; a token without the route's scope is 401
`missing_scope` with `required_scope`.
"""

from __future__ import annotations

import dataclasses
import re
from typing import TYPE_CHECKING, Optional, Union

from dropbox import auth

from dropbox_emulator.exchange import Response
from dropbox_emulator.handlers.catalogue import RouteInfo
from dropbox_emulator.http import wire
from dropbox_emulator.oauth.tokens import AccessToken, TokenProblem

if TYPE_CHECKING:
    from dropbox_emulator.runtime import Runtime

# What Dropbox accepts as an access token; anything else is "malformed" (400), not unknown (401).
_TOKEN_SHAPE = re.compile(r"[A-Za-z0-9._~+/=-]{1,2048}")


@dataclasses.dataclass(frozen=True)
class Caller:
    access_token: Optional[str] = None  # None for noauth and app-auth routes
    token: Optional[AccessToken] = None


def _bad(info: RouteInfo, message: str) -> Response:
    return Response.text(400, wire.error_text(info, message))


def auth_error(error: auth.AuthError) -> Response:
    return Response(
        401,
        wire.auth_error_body(error).encode(),
        "application/json",
        {"WWW-Authenticate": 'Bearer realm="Dropbox-API"'},
    )


def authenticate(
    runtime: Runtime, info: RouteInfo, header: Optional[str]
) -> Union[Response, Caller]:
    """The caller of `info` with this Authorization value, or the Response refusing it."""
    if info.auth == "noauth":
        return Caller()
    if header is None:
        return _bad(
            info, 'Must provide HTTP header "Authorization" or URL parameter "authorization".'
        )
    scheme, _, credential = header.strip().partition(" ")
    credential = credential.strip()
    if info.auth == "app":
        # App-auth routes (check/app...) take HTTP Basic app_key:app_secret.
        if scheme.lower() == "basic" and runtime.apps.check_basic(credential) is not None:
            return Caller()
        return _bad(
            info,
            'Invalid authorization value in HTTP header "Authorization". '
            'Expecting "Basic <base64(app_key:app_secret)>".',
        )
    if scheme.lower() != "bearer" or not credential:
        # Never echo the value: it may be a credential.
        return _bad(
            info,
            'Invalid authorization value in HTTP header "Authorization". '
            'Expecting "Bearer <oauth2-access-token>".',
        )
    if not _TOKEN_SHAPE.fullmatch(credential):
        return _bad(info, "The given OAuth 2 access token is malformed.")
    try:
        token = runtime.tokens.lookup(credential)
    except TokenProblem as problem:
        return auth_error(getattr(auth.AuthError, problem.tag))
    if info.scope is not None and info.scope not in token.scopes:
        return auth_error(auth.AuthError.missing_scope(auth.TokenScopeError(info.scope)))
    return Caller(credential, token)
