"""The SDK's private attributes the plugin relies on (sdk_internals.py), checked on a real client.

If an SDK release renames one, these fail naming it; then `src/dvc_dropbox/sdk_internals.py` (the
only module that touches them) must follow. A local transport stands in for the network, so the
tests also prove the SDK *sends* what the plugin writes into these attributes.
"""

from __future__ import annotations

import datetime
import inspect
import json
import re
from pathlib import Path
from typing import Any

import dropbox
import pytest
import requests
from dropbox import common, files, stone_base

from dvc_dropbox import sdk_internals

SRC = Path(__file__).resolve().parents[2] / "src" / "dvc_dropbox"
LATER = datetime.datetime(2099, 1, 1)
ARGUMENTS: dict[str, Any] = {
    "oauth2_access_token": "access-token-1",
    "oauth2_access_token_expiration": LATER,
    "oauth2_refresh_token": "refresh-token-1",
    "app_key": "app-key-1",
    "scope": ["files.metadata.read"],
    "headers": {"X-Test": "1"},
}


class LocalTransport(requests.adapters.BaseAdapter):
    """Records every request and answers the two routes these tests call."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[requests.PreparedRequest] = []

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        self.sent.append(request)
        url = request.url or ""
        if url.endswith("/oauth2/token"):
            body: dict[str, Any] = {"access_token": "access-token-2", "expires_in": 14400}
        else:
            body = {"result": "dvc-dropbox"}
        response = requests.Response()
        response.status_code = 200
        response.headers["Content-Type"] = "application/json"
        response._content = json.dumps(body).encode()
        response.request = request
        response.url = url
        return response

    def close(self) -> None:
        return None


def make_client(**overrides: Any) -> tuple[dropbox.Dropbox, LocalTransport]:
    transport = LocalTransport()
    session = requests.Session()
    session.mount("https://", transport)
    client = dropbox.Dropbox(**{**ARGUMENTS, **overrides}, session=session)
    return client, transport


def renamed(attribute: str, argument: str) -> str:
    return (
        f"dropbox {dropbox.__version__}: Dropbox.{attribute} (set from the {argument}= argument) "
        "is gone or holds something else; update src/dvc_dropbox/sdk_internals.py to the new name"
    )


def test_client_attributes_exist_and_hold_the_constructor_arguments() -> None:
    client, _ = make_client()
    for attribute, argument in sdk_internals.CLIENT_ATTRIBUTES.items():
        assert hasattr(client, attribute), renamed(attribute, argument)
        assert getattr(client, attribute) == ARGUMENTS[argument], renamed(attribute, argument)
    assert sdk_internals.access_token(client) == "access-token-1"
    assert sdk_internals.access_token_expiration(client) == LATER
    assert sdk_internals.refresh_token(client) == "refresh-token-1"
    assert sdk_internals.app_key(client) == "app-key-1"
    assert sdk_internals.scope(client) == ["files.metadata.read"]
    assert sdk_internals.headers(client) == {"X-Test": "1"}
    assert sdk_internals.host_name(client, "api") == dropbox.session.API_HOST
    assert sdk_internals.timeout(client.clone(timeout=(3, 7))) == (3, 7)


def test_http_session_is_the_one_the_client_sends_through() -> None:
    client, transport = make_client()
    session = sdk_internals.http_session(client)
    assert isinstance(session, requests.Session), (
        f"dropbox {dropbox.__version__}: Dropbox.{sdk_internals.HTTP_SESSION} (set from the "
        "session= argument) is gone; update src/dvc_dropbox/sdk_internals.py (upload progress "
        "falls back to once per request meanwhile)"
    )
    assert session.get_adapter("https://x/") is transport


def test_a_token_set_from_outside_is_the_one_the_sdk_sends() -> None:
    client, transport = make_client()
    sdk_internals.set_access_token(client, "from-another-process", LATER)
    assert client.check_user("dvc-dropbox").result == "dvc-dropbox"
    assert transport.sent[-1].headers["Authorization"] == "Bearer from-another-process", renamed(
        sdk_internals.ACCESS_TOKEN, "oauth2_access_token"
    )
    assert not any((r.url or "").endswith("/oauth2/token") for r in transport.sent)


def test_the_sdk_refresh_writes_the_attributes_the_plugin_reads() -> None:
    client, transport = make_client()
    client.refresh_access_token()
    assert (transport.sent[-1].url or "").endswith("/oauth2/token")
    assert sdk_internals.access_token(client) == "access-token-2", renamed(
        sdk_internals.ACCESS_TOKEN, "oauth2_access_token"
    )
    expiration = sdk_internals.access_token_expiration(client)
    assert isinstance(expiration, datetime.datetime) and expiration < LATER, renamed(
        sdk_internals.ACCESS_TOKEN_EXPIRATION, "oauth2_access_token_expiration"
    )


def test_path_root_header_lives_in_headers() -> None:
    client, _ = make_client(headers=None)
    assert sdk_internals.headers(client) == {}
    rooted = client.with_path_root(common.PathRoot.home)
    assert "Dropbox-API-Path-Root" in sdk_internals.headers(rooted), renamed(
        sdk_internals.HEADERS, "headers"
    )


@pytest.mark.parametrize("name", sdk_internals.OVERRIDDEN_METHODS)
def test_methods_the_client_overrides_exist(name: str) -> None:
    method = getattr(dropbox.Dropbox, name, None)
    assert callable(method), f"dropbox {dropbox.__version__}: Dropbox.{name} is gone"
    if name == "refresh_access_token":
        params = inspect.signature(method).parameters
        assert {"host", "scope"} <= set(params), f"Dropbox.{name} takes {list(params)} now"


def test_stone_union_slots() -> None:
    for slot in (sdk_internals.UNION_TAG, sdk_internals.UNION_VALUE):
        assert slot in stone_base.Union.__slots__, (
            f"stone unions no longer keep {slot!r} (slots: {stone_base.Union.__slots__}); "
            "update src/dvc_dropbox/sdk_internals.py"
        )
    conflict = files.WriteError.conflict(files.WriteConflictError.file)
    assert sdk_internals.union_tag(conflict) == "conflict"
    assert sdk_internals.union_value(conflict) == files.WriteConflictError.file
    assert sdk_internals.union_tag(files.LookupError.not_found) == "not_found"
    assert sdk_internals.union_value(files.LookupError.not_found) is None
    assert sdk_internals.union_tag("not_found") is None
    assert sdk_internals.union_tag(None) is None


def test_no_other_module_touches_private_sdk_attributes() -> None:
    names = [
        *sdk_internals.CLIENT_ATTRIBUTES,
        sdk_internals.HTTP_SESSION,
        sdk_internals.TIMEOUT,
        sdk_internals.HOST_MAP,
        sdk_internals.UNION_TAG,
        sdk_internals.UNION_VALUE,
    ]
    pattern = re.compile(r"\.(" + "|".join(re.escape(n) for n in names) + r")\b")
    offenders = [
        f"{path.relative_to(SRC)}:{number}: {line.strip()}"
        for path in sorted(SRC.rglob("*.py"))
        if path.name != "sdk_internals.py"
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if pattern.search(line)
    ]
    assert offenders == [], "use dvc_dropbox.sdk_internals instead:\n" + "\n".join(offenders)
