"""The SDK session's TLS contexts (http_session.share_tls_contexts), over real HTTPS to the
emulator: the CA bundle is loaded once, not once per connection, and certificates are still
verified."""

from __future__ import annotations

import ssl
import threading
from typing import Any

import dropbox
import pytest
import requests

from dvc_dropbox import http_session
from tests.helpers.emulator import EmulatorProcess

THREADS = 6


def counting(monkeypatch: pytest.MonkeyPatch, name: str) -> list[Any]:
    """Record each call of ssl.SSLContext.<name> (every context, every thread)."""
    calls: list[Any] = []
    real = getattr(ssl.SSLContext, name)

    def wrapper(self: ssl.SSLContext, *args: Any, **kwargs: Any) -> Any:
        calls.append(args or kwargs)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(ssl.SSLContext, name, wrapper)
    return calls


def client(token: dict[str, Any], session: Any) -> Any:
    return dropbox.Dropbox(
        oauth2_access_token=token["access_token"],
        session=session,
        max_retries_on_error=0,
        max_retries_on_rate_limit=0,
    )


def test_one_bundle_load_for_many_connections(
    monkeypatch: pytest.MonkeyPatch, emulator: EmulatorProcess, dropbox_token: dict[str, Any]
) -> None:
    monkeypatch.setattr(http_session, "_TLS_CONTEXTS", http_session._TLSContexts())
    loads = counting(monkeypatch, "load_verify_locations")
    handshakes = counting(monkeypatch, "wrap_socket")
    dbx = client(dropbox_token, http_session.create_session(THREADS))
    together = threading.Barrier(THREADS, timeout=30)
    errors: list[BaseException] = []

    def upload() -> None:
        try:
            together.wait()  # all at once: each thread needs its own connection
            for _ in range(3):
                dbx.files_upload_session_start(b"x" * 100, close=True)
        except BaseException as exc:  # reported below, with the assertion
            errors.append(exc)

    threads = [threading.Thread(target=upload) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors
    assert len(handshakes) >= 2, "the test needs several connections to mean anything"
    assert len(loads) == 1, loads  # the emulator's bundle (REQUESTS_CA_BUNDLE), once


def test_certificates_are_still_verified(
    monkeypatch: pytest.MonkeyPatch, emulator: EmulatorProcess, dropbox_token: dict[str, Any]
) -> None:
    import certifi

    # A bundle without the emulator's CA: the emulator's certificate must be refused.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", certifi.where())
    dbx = client(dropbox_token, http_session.create_session(2))
    with pytest.raises(requests.exceptions.SSLError):
        dbx.files_upload_session_start(b"x", close=True)
    # And back to the emulator's bundle on the same session: a new pool, which verifies.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", emulator.ca_bundle)
    assert dbx.files_upload_session_start(b"x", close=True).session_id
