"""The SDK's private attributes dvc-dropbox relies on, all in this one module.

The SDK has no public way to read or replace a client's tokens, which `auth.DropboxClient` needs to
share one refresh between threads and processes, and no generic getter for a stone union's tag and
member, which the error walker in `sdk_errors` needs. These names are private and may change in
any SDK release: `tests/unit/test_sdk_internals.py` checks them on a real `dropbox.Dropbox` and
fails naming the attribute that moved. Nothing else in the plugin touches `_`-names of the SDK.
"""

from __future__ import annotations

import datetime
from typing import Any, Optional

# Client attributes, each with the constructor argument that sets it (the pin test uses both).
ACCESS_TOKEN = "_oauth2_access_token"
ACCESS_TOKEN_EXPIRATION = "_oauth2_access_token_expiration"
REFRESH_TOKEN = "_oauth2_refresh_token"
APP_KEY = "_app_key"
SCOPE = "_scope"
HEADERS = "_headers"
# The requests.Session the SDK sends through: upload_progress wraps its `send` to report bytes
# as they leave (the SDK gives no progress hook). Not in CLIENT_ATTRIBUTES: the pin test checks it
# on its own, as the session object is not a plain constructor value.
HTTP_SESSION = "_session"
TIMEOUT = "_timeout"
HOST_MAP = "_host_map"
CLIENT_ATTRIBUTES: dict[str, str] = {
    ACCESS_TOKEN: "oauth2_access_token",
    ACCESS_TOKEN_EXPIRATION: "oauth2_access_token_expiration",
    REFRESH_TOKEN: "oauth2_refresh_token",
    APP_KEY: "app_key",
    SCOPE: "scope",
    HEADERS: "headers",
}
# `auth.DropboxClient` overrides these to serialize refreshes; they are not documented as hooks.
OVERRIDDEN_METHODS = (
    "check_and_refresh_access_token",
    "refresh_access_token",
    "request_json_string",
    "request_json_string_with_retry",
    "clone",
)

# Stone unions keep their tag and member in these slots (stone_base.Union.__slots__).
UNION_TAG = "_tag"
UNION_VALUE = "_value"


def access_token(client: Any) -> Optional[str]:
    value: Optional[str] = getattr(client, ACCESS_TOKEN)
    return value


def access_token_expiration(client: Any) -> Optional[datetime.datetime]:
    value: Optional[datetime.datetime] = getattr(client, ACCESS_TOKEN_EXPIRATION)
    return value


def set_access_token(
    client: Any, token: Optional[str], expiration: Optional[datetime.datetime]
) -> None:
    """Use a token obtained elsewhere (another process saved it) instead of refreshing."""
    setattr(client, ACCESS_TOKEN, token)
    setattr(client, ACCESS_TOKEN_EXPIRATION, expiration)


def refresh_token(client: Any) -> Optional[str]:
    value: Optional[str] = getattr(client, REFRESH_TOKEN)
    return value


def app_key(client: Any) -> Optional[str]:
    value: Optional[str] = getattr(client, APP_KEY)
    return value


def scope(client: Any) -> Optional[list[str]]:
    value: Optional[list[str]] = getattr(client, SCOPE)
    return value


def headers(client: Any) -> dict[str, str]:
    """A copy of the extra headers the client sends (e.g. Dropbox-API-Path-Root)."""
    return dict(getattr(client, HEADERS) or {})


def timeout(client: Any) -> Any:
    """The client's requests timeout: seconds, or (connect, read) seconds."""
    return getattr(client, TIMEOUT, None)


def host_name(client: Any, host: str) -> str:
    """The host name the client sends `host` ("api", "content") requests to."""
    return str((getattr(client, HOST_MAP, None) or {}).get(host, host))


def http_session(client: Any) -> Any:
    """The client's requests.Session, or None if this SDK keeps it elsewhere."""
    return getattr(client, HTTP_SESSION, None)


def union_tag(value: Any) -> Optional[str]:
    """The tag of a stone union (e.g. 'not_found'), or None if `value` is not a union."""
    from dropbox import stone_base

    if not isinstance(value, stone_base.Union):
        return None
    tag = getattr(value, UNION_TAG)
    return tag if isinstance(tag, str) else None


def union_value(value: Any) -> Any:
    """The member a stone union carries (None for a void tag or a non-union)."""
    from dropbox import stone_base

    if not isinstance(value, stone_base.Union):
        return None
    return getattr(value, UNION_VALUE)


__all__ = [
    "CLIENT_ATTRIBUTES",
    "OVERRIDDEN_METHODS",
    "UNION_TAG",
    "UNION_VALUE",
    "access_token",
    "access_token_expiration",
    "app_key",
    "headers",
    "http_session",
    "refresh_token",
    "scope",
    "set_access_token",
    "union_tag",
    "union_value",
]
