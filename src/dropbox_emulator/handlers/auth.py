"""Routes about the caller's credentials: `check/user`, `check/app` and `auth/token/revoke`."""

from __future__ import annotations

from dropbox import check

from dropbox_emulator.handlers.contract import Call, Services, route


@route("check/user")
def check_user(call: Call, services: Services) -> check.EchoResult:
    # A cheap token probe: the server already checked the token and account_info.read.
    return check.EchoResult(result=call.arg.query)


@route("check/app")
def check_app(call: Call, services: Services) -> check.EchoResult:
    return check.EchoResult(result=call.arg.query)


@route("auth/token/revoke")
def token_revoke(call: Call, services: Services) -> None:
    # Revokes this access token and, when it came from a refresh token, that one and its
    # other access tokens too (auth.stone).
    if call.access_token is not None:
        services.revoke_token(call.access_token)
    return None
