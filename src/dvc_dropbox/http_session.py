"""The requests session under the SDK client, with requests' per-request overheads cut.

The SDK sends through a `requests.Session` (`dropbox.create_session`); it stays that session, with
the SDK's adapter and pool sizes. Two things requests does per request or per connection cost
more CPU than the rest of a small upload together, and have answers that do not change:

- `Session.request` calls `merge_environment_settings` for every request, which walks the whole
  environment twice (`getproxies_environment`; on macOS and Windows it asks the system proxy
  settings too) for proxies, no_proxy and the CA bundle: ~150 us per request. The answer depends
  on the URL's host and a few variables only, so it is kept per (host, settings) and recomputed
  when one of those variables (ENVIRONMENT_SETTINGS_VARS) changes;
- every new HTTPS connection gets a fresh `SSLContext` that loads the whole CA bundle (certifi's,
  or REQUESTS_CA_BUNDLE's) again: ~20 ms of CPU per connection, and a push opens one per
  concurrent upload. Here one context per CA bundle is loaded once and shared by every
  connection (the same verification: CERT_REQUIRED, hostname checked, the same bundle).
"""

from __future__ import annotations

import contextlib
import os
import ssl
import threading
from typing import Any, Optional

# What requests reads from the environment for an https URL (proxies, the no_proxy list, the CA
# bundle; REQUEST_METHOD turns HTTP_PROXY off under CGI): a change to any of them is noticed.
ENVIRONMENT_SETTINGS_VARS = (
    *("https_proxy", "HTTPS_PROXY", "http_proxy", "HTTP_PROXY"),
    *("all_proxy", "ALL_PROXY", "no_proxy", "NO_PROXY"),
    *("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "REQUEST_METHOD"),
)


def create_session(max_connections: int) -> Any:
    """The SDK's session (`dropbox.create_session`) with both caches of the module docstring."""
    import dropbox

    session = dropbox.create_session(max_connections=max_connections)
    cache_environment_settings(session)
    share_tls_contexts(session.get_adapter("https://"))
    return session


def cache_environment_settings(session: Any) -> None:
    """Keep `session.merge_environment_settings`'s answers per host (see the module docstring)."""
    merge = session.merge_environment_settings
    known: dict[tuple[Any, ...], dict[str, Any]] = {}

    def merge_environment_settings(
        url: str, proxies: Any, stream: Any, verify: Any, cert: Any
    ) -> dict[str, Any]:
        if proxies or not isinstance(verify, (bool, type(None))) or cert is not None:
            return dict(merge(url, proxies, stream, verify, cert))
        key = (
            tuple(url.split("/", 3)[:3]),  # scheme, host[:port]: what proxies depend on
            stream,
            verify,
            session.trust_env,
            session.verify,
            session.cert,
            session.stream,
            tuple(session.proxies.items()),
            tuple(map(os.environ.get, ENVIRONMENT_SETTINGS_VARS)),
        )
        try:
            settings = known[key]
        except (KeyError, TypeError):  # TypeError: an unhashable setting, never kept
            settings = merge(url, {}, stream, verify, cert)
            with contextlib.suppress(TypeError):
                known[key] = settings
        # requests may add to the dicts it is given: each request gets its own.
        return {**settings, "proxies": dict(settings["proxies"] or {})}

    session.merge_environment_settings = merge_environment_settings


class _TLSContexts:
    """One verifying SSLContext per CA bundle (file or directory), loaded on first use."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._contexts: dict[tuple[Optional[str], Optional[str]], ssl.SSLContext] = {}

    def get(self, ca_certs: Optional[str], ca_cert_dir: Optional[str]) -> ssl.SSLContext:
        key = (ca_certs, ca_cert_dir)
        context = self._contexts.get(key)
        if context is None:
            with self._lock:
                context = self._contexts.get(key)
                if context is None:
                    from urllib3.util.ssl_ import create_urllib3_context

                    # What urllib3 builds for each connection when it is given no context.
                    context = create_urllib3_context(cert_reqs=ssl.CERT_REQUIRED)
                    try:
                        context.load_verify_locations(cafile=ca_certs, capath=ca_cert_dir)
                    except (OSError, ssl.SSLError):
                        # Worded as requests words it (sdk_errors names REQUESTS_CA_BUNDLE).
                        raise OSError(
                            "Could not find a suitable TLS CA certificate bundle, invalid path: "
                            f"{ca_certs or ca_cert_dir}"
                        ) from None
                    self._contexts[key] = context
        return context

    def owns(self, context: Any) -> bool:
        return any(context is known for known in self._contexts.values())


_TLS_CONTEXTS = _TLSContexts()


def share_tls_contexts(adapter: Any) -> None:
    """Make `adapter` (a requests HTTPAdapter) hand every connection pool a shared SSLContext.

    requests (>= 2.32) lets an adapter choose a pool's TLS settings in
    `build_connection_pool_key_attributes`; the CA bundle it would have each connection load
    becomes the shared context instead. `cert_verify` then sets the bundle's path on the pool
    again, which would make urllib3 load it into the context for every connection: it is cleared
    for pools that have the shared context. Without that hook (older requests) or with a client
    certificate, nothing changes.
    """
    build = getattr(adapter, "build_connection_pool_key_attributes", None)
    if build is None or getattr(adapter, "_dvc_dropbox_tls", False):
        return
    cert_verify = adapter.cert_verify

    def build_connection_pool_key_attributes(
        request: Any, verify: Any, cert: Any = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        host_params, pool_kwargs = build(request, verify, cert)
        # TLS settings of the adapter's own pool manager (a pinned bundle) win: left alone.
        manager = getattr(getattr(adapter, "poolmanager", None), "connection_pool_kw", None) or {}
        if (
            verify is False
            or cert is not None
            or host_params.get("scheme") != "https"
            or "ssl_context" in pool_kwargs
            or any(manager.get(key) for key in ("ssl_context", "ca_certs", "ca_cert_dir"))
        ):
            return host_params, pool_kwargs
        ca_certs = pool_kwargs.pop("ca_certs", None)
        ca_cert_dir = pool_kwargs.pop("ca_cert_dir", None)
        if ca_certs is None and ca_cert_dir is None:
            from requests.utils import DEFAULT_CA_BUNDLE_PATH  # what cert_verify uses for True

            ca_certs = DEFAULT_CA_BUNDLE_PATH
        pool_kwargs["ssl_context"] = _TLS_CONTEXTS.get(ca_certs, ca_cert_dir)
        return host_params, pool_kwargs

    def verify_with_shared_context(conn: Any, url: str, verify: Any, cert: Any) -> None:
        cert_verify(conn, url, verify, cert)
        if _TLS_CONTEXTS.owns(getattr(conn, "conn_kw", {}).get("ssl_context")):
            # The context already trusts exactly this bundle: loading it again per connection is
            # what this module saves.
            conn.ca_certs = None
            conn.ca_cert_dir = None

    adapter.build_connection_pool_key_attributes = build_connection_pool_key_attributes
    adapter.cert_verify = verify_with_shared_context
    adapter._dvc_dropbox_tls = True
