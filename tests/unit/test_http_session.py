"""The SDK session's per-host cache of requests' environment settings (http_session.create_session).

It must answer exactly what requests itself answers for the same URL and environment (proxies,
no_proxy, CA bundle), notice a change of those variables, and not walk the environment per request.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import pytest
import requests
import requests.sessions

from dvc_dropbox.http_session import ENVIRONMENT_SETTINGS_VARS, create_session

CONTENT = "https://content.dropboxapi.com/2/files/upload_session/start"
API = "https://api.dropboxapi.com/2/files/upload_session/finish_batch_v2"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ENVIRONMENT_SETTINGS_VARS:
        monkeypatch.delenv(name, raising=False)


def settings(session: Any, url: str, stream: bool = False) -> dict[str, Any]:
    # What Session.request passes for a call of the SDK's: no proxies, verify and cert unset.
    return dict(session.merge_environment_settings(url, {}, stream, None, None))


def expected(url: str, stream: bool = False) -> dict[str, Any]:
    return settings(requests.Session(), url, stream)


ENVIRONMENTS = [
    {},
    {"HTTPS_PROXY": "http://proxy.example:3128"},
    {"https_proxy": "http://lower.example:8080", "ALL_PROXY": "http://all.example:1"},
    {"HTTPS_PROXY": "http://proxy.example:3128", "NO_PROXY": "content.dropboxapi.com"},
    {"ALL_PROXY": "socks5h://127.0.0.1:1080", "no_proxy": ".dropboxapi.com"},
    {"REQUESTS_CA_BUNDLE": "/etc/ssl/corporate.pem"},
    {"CURL_CA_BUNDLE": "/etc/ssl/curl.pem"},
]


@pytest.mark.parametrize("env", ENVIRONMENTS, ids=lambda env: ",".join(env) or "none")
def test_same_settings_as_requests(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    session = create_session(2)
    for url in (CONTENT, API):
        for stream in (False, True):
            assert settings(session, url, stream) == expected(url, stream)
            # Asked again (now from the cache): still the same answer.
            assert settings(session, url, stream) == expected(url, stream)


def test_a_change_of_the_proxy_variables_is_noticed(monkeypatch: pytest.MonkeyPatch) -> None:
    session = create_session(2)
    assert settings(session, CONTENT)["proxies"] == {}
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    assert settings(session, CONTENT)["proxies"] == {"https": "http://proxy.example:3128"}
    monkeypatch.setenv("NO_PROXY", "dropboxapi.com")
    assert settings(session, CONTENT)["proxies"] == expected(CONTENT)["proxies"]
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/corporate.pem")
    assert settings(session, CONTENT)["verify"] == "/etc/ssl/corporate.pem"


def test_environment_is_walked_once_per_host(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    real = requests.sessions.get_environ_proxies

    def counting(url: str, no_proxy: Any = None) -> Any:
        calls.append(url)
        return real(url, no_proxy=no_proxy)

    monkeypatch.setattr(requests.sessions, "get_environ_proxies", counting)
    session = create_session(2)
    for _ in range(50):
        settings(session, CONTENT)
        settings(session, CONTENT + "?x=1")
        settings(session, API)
    assert [url.split("/")[2] for url in calls] == ["content.dropboxapi.com", "api.dropboxapi.com"]


def test_each_request_gets_its_own_proxies_dict(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    session = create_session(2)
    first = settings(session, CONTENT)
    first["proxies"]["https"] = "http://changed.example:1"
    assert settings(session, CONTENT)["proxies"] == {"https": "http://proxy.example:3128"}


def test_explicit_arguments_bypass_the_cache() -> None:
    session = create_session(2)
    proxies = {"https": "http://explicit.example:1"}
    got = session.merge_environment_settings(CONTENT, dict(proxies), False, "/ca.pem", None)
    assert got["proxies"] == proxies
    assert got["verify"] == "/ca.pem"


def pool_settings(session: Any, url: str, verify: Any = True) -> dict[str, Any]:
    """The TLS settings the session's adapter gives the pool for `url` (no connection made)."""
    request = requests.Request("POST", url, data=b"x").prepare()
    adapter = session.get_adapter(url)
    return dict(adapter.build_connection_pool_key_attributes(request, verify, None)[1])


def test_one_shared_tls_context_per_bundle(tmp_path: Any) -> None:
    import certifi

    session = create_session(2)
    first, second = pool_settings(session, CONTENT), pool_settings(session, API)
    assert first["ssl_context"] is second["ssl_context"]  # one context, loaded once
    assert "ca_certs" not in first  # so urllib3 does not load the bundle per connection
    assert first["ssl_context"].verify_mode == ssl.CERT_REQUIRED
    assert first["ssl_context"].check_hostname
    # Another bundle (REQUESTS_CA_BUNDLE, a verify path): its own context.
    other = pool_settings(session, CONTENT, verify=certifi.where())
    assert other["ssl_context"] is first["ssl_context"]  # certifi's is the default bundle
    bundle = tmp_path / "one.pem"
    bundle.write_text(Path(certifi.where()).read_text())
    mine = pool_settings(session, CONTENT, verify=str(bundle))
    assert mine["ssl_context"] is not first["ssl_context"]


def test_no_shared_context_without_verification_or_with_a_pinned_bundle() -> None:
    session = create_session(2)
    assert "ssl_context" not in pool_settings(session, CONTENT, verify=False)
    adapter = session.get_adapter(CONTENT)
    adapter.poolmanager.connection_pool_kw["ca_certs"] = "/pinned.pem"
    assert "ssl_context" not in pool_settings(session, CONTENT)
