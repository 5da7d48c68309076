"""Routes about the caller's credentials: `check/user`, `check/app` and `auth/token/revoke`."""

from __future__ import annotations

from typing import Any

from dropbox import check

from dropbox_emulator.api import Call, route


@route("check/user")
def check_user(call: Call) -> Any:
    # A cheap token probe: the server already checked the token and account_info.read.
    return check.EchoResult(result=call.arg.query)


@route("check/app")
def check_app(call: Call) -> Any:
    return check.EchoResult(result=call.arg.query)


@route("auth/token/revoke")
def token_revoke(call: Call) -> None:
    # Revokes this access token and, when it came from a refresh token, that one and its
    # other access tokens too (auth.stone).
    if call.revoke_token is not None:
        call.revoke_token()
    return None
