"""The control API under `/_emulator/` (JSON, no auth, loopback clients only).

* `GET /_emulator`: version, url, app keys, account id, config.
* `POST /_emulator/tokens` `{"app_key"?, "scopes"?, "ttl"?, "offline"?, "pkce"?}` →
  `{"access_token", "refresh_token", "expires_at" (ISO 8601 UTC), "account_id", ...}`.
* `POST /_emulator/tokens/expire` `{"access_token"}`; `POST /_emulator/tokens/revoke`
  `{"refresh_token"}` (also revokes its access tokens).
* `POST /_emulator/faults` a fault or a list of them (`faults.Fault`); `GET`/`DELETE` lists/clears.
* `GET /_emulator/stats` → `{"requests": {route: n}, "commits", "bytes_in", "bytes_out"}`.
* `GET`/`POST /_emulator/config` `{"latency_ms"?, "commit_ms"?, "quota_bytes"?,
  "rate_limit_per_s"?, "lock_wait_ms"?, "token_ttl"?, "profile"?, "seed"?, "time_scale"?,
  "stream_mib_per_s"?, "total_mib_per_s"? (0 or null: no cap), "session_lifetime_s"?, and
  every realism value of `control.profile`}` → the config, changed live. A `profile` is applied
  first, so the other fields of the same request override single values of it.
* `GET /_emulator/realism` → `{"counts": {"contention", "entry_contention", "rate_limited",
  "early_retries"}, "early_retry_routes": {route: n}, "profile", "time_scale", "values":
  {field: value}, "sources": {field: source}}`: `contention` commits refused with
  too_many_write_operations (any form),
  `entry_contention` batch entries refused that way inside a successful result, `rate_limited`
  429 answers, `early_retries` refused requests sent again before the wait they were told
  was over (other requests arriving during a wait are refused too, not counted; see
  `control.profile.Cooldowns`).
* `GET /_emulator/concurrency` → `{"in_flight", "most_in_flight"}`: `/2/` API calls being served
  now, and the most served at once since the start (or the last `DELETE`, which starts a new
  high-water mark, or reset), so tests can check a client's limit on requests in flight.
* `POST /_emulator/reset`: files, stats and faults cleared; tokens kept.
"""

from __future__ import annotations

import datetime
import ipaddress
from typing import TYPE_CHECKING, Any, Callable

from dropbox_emulator import __version__, handlers
from dropbox_emulator.control.faults import Fault, FaultSpecError
from dropbox_emulator.control.profile import (
    PROFILES,
    RANGES,
    SHARES,
    SOURCES,
    ProfileError,
    apply_profile,
    parse_range,
    parse_share,
)
from dropbox_emulator.exchange import Request, Response
from dropbox_emulator.handlers.catalogue import ALL_SCOPES
from dropbox_emulator.oauth.tokens import scope_text
from dropbox_emulator.state.account import ACCOUNT_ID

if TYPE_CHECKING:
    from dropbox_emulator.runtime import Runtime

# Config fields POST /_emulator/config may change live, and whether they may be null.
LIVE_CONFIG: dict[str, bool] = {
    "latency_ms": False,
    "commit_ms": False,
    "lock_wait_ms": False,
    "quota_bytes": False,
    "rate_limit_per_s": True,
    "token_ttl": False,
    "time_scale": False,
    "slow_commit_ms": False,
    "namespace_commits_per_s": True,
    "stream_mib_per_s": True,
    "total_mib_per_s": True,
    "session_lifetime_s": False,
}
# Budgets and caps where 0 means "no limit", like leaving them unset.
NO_LIMIT_AT_ZERO = (
    "rate_limit_per_s",
    "namespace_commits_per_s",
    "stream_mib_per_s",
    "total_mib_per_s",
)
# The other live fields, by kind (validated by their own parsers).
LIVE_SPECIAL = (*SHARES, *RANGES, "seed", "enforce_retry_after", "profile")


class ControlError(Exception):
    pass


def iso_utc(epoch: float) -> str:
    moment = datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _object(request: Request) -> dict[str, Any]:
    try:
        payload = request.json()
    except (ValueError, UnicodeDecodeError) as exc:
        raise ControlError(f"body is not JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise ControlError("body must be a JSON object")
    return payload


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


def handle(runtime: Runtime, request: Request) -> Response:
    if not _is_loopback(request.client_host):
        return Response.json(403, {"error": "the control API only answers loopback clients"})
    name = request.path[len("/_emulator") :].strip("/")
    endpoint = ENDPOINTS.get((request.method, name))
    if endpoint is None:
        known = sorted({n for _, n in ENDPOINTS})
        if any(n == name for _, n in ENDPOINTS):
            return Response.json(405, {"error": f"method {request.method} not allowed"})
        return Response.json(404, {"error": f"unknown control endpoint {name!r}", "known": known})
    try:
        return endpoint(runtime, request)
    except (ControlError, FaultSpecError) as exc:
        return Response.json(400, {"error": str(exc)})


def info(runtime: Runtime, request: Request) -> Response:
    return Response.json(
        200,
        {
            "version": __version__,
            "url": runtime.url,
            "app_keys": runtime.apps.keys,
            "account_id": ACCOUNT_ID,
            "handlers": list(handlers.MODULES),
            "config": config_view(runtime),
        },
    )


def _scopes(value: Any) -> frozenset[str]:
    if value is None:
        return ALL_SCOPES
    if isinstance(value, str):
        value = value.split()
    if not isinstance(value, list) or not all(isinstance(s, str) for s in value):
        raise ControlError("'scopes' must be a list of strings or a space-separated string")
    unknown = set(value) - ALL_SCOPES
    if unknown:
        raise ControlError(f"unknown scopes: {sorted(unknown)}")
    return frozenset(value)


def new_token(runtime: Runtime, request: Request) -> Response:
    payload = _object(request)
    unknown = set(payload) - {"app_key", "scopes", "ttl", "offline", "pkce"}
    if unknown:
        raise ControlError(f"unknown fields: {sorted(unknown)}")
    app_key = payload.get("app_key") or runtime.apps.default_key
    if app_key not in runtime.apps:
        raise ControlError(f"unknown app key; known: {runtime.apps.keys}")
    ttl = payload.get("ttl")
    if ttl is None:
        ttl = runtime.config.token_ttl
    if not isinstance(ttl, (int, float)) or isinstance(ttl, bool) or ttl <= 0:
        raise ControlError("'ttl' must be a positive number of seconds")
    offline = payload.get("offline", True)
    pkce = payload.get("pkce", True)  # False: refreshing the token needs the app secret
    if not isinstance(offline, bool) or not isinstance(pkce, bool):
        raise ControlError("'offline' and 'pkce' must be true or false")
    issued = runtime.tokens.issue(
        app_key,
        _scopes(payload.get("scopes")),
        float(ttl),
        offline=offline,
        account_id=ACCOUNT_ID,
        pkce=pkce,
    )
    return Response.json(
        200,
        {
            "access_token": issued.access_token,
            "refresh_token": issued.refresh_token,
            "expires_at": iso_utc(issued.expires_at),
            "expires_in": int(ttl),
            "account_id": issued.account_id,
            "app_key": app_key,
            "scope": scope_text(issued.scopes),
        },
    )


def _string_field(request: Request, field: str) -> str:
    value = _object(request).get(field)
    if not isinstance(value, str) or not value:
        raise ControlError(f"'{field}' (a string) is required")
    return value


def expire_token(runtime: Runtime, request: Request) -> Response:
    if not runtime.tokens.expire(_string_field(request, "access_token")):
        raise ControlError("unknown access token")
    return Response.json(200, {"expired": True})


def revoke_token(runtime: Runtime, request: Request) -> Response:
    if not runtime.tokens.revoke_refresh(_string_field(request, "refresh_token")):
        raise ControlError("unknown refresh token")
    return Response.json(200, {"revoked": True})


def add_faults(runtime: Runtime, request: Request) -> Response:
    try:
        payload = request.json()
    except (ValueError, UnicodeDecodeError) as exc:
        raise ControlError(f"body is not JSON: {exc}") from None
    specs = payload if isinstance(payload, list) else [payload]
    faults = [Fault.parse(spec) for spec in specs]  # all or nothing
    for fault in faults:
        runtime.faults.add(fault)
    return Response.json(200, {"faults": runtime.faults.describe()})


def list_faults(runtime: Runtime, request: Request) -> Response:
    return Response.json(200, {"faults": runtime.faults.describe()})


def clear_faults(runtime: Runtime, request: Request) -> Response:
    runtime.faults.clear()
    return Response.json(200, {"faults": []})


def stats(runtime: Runtime, request: Request) -> Response:
    return Response.json(200, runtime.stats.snapshot())


def concurrency(runtime: Runtime, request: Request) -> Response:
    return Response.json(200, runtime.stats.concurrency())


def restart_concurrency(runtime: Runtime, request: Request) -> Response:
    return Response.json(200, runtime.stats.concurrency(restart=True))


def config_view(runtime: Runtime) -> dict[str, Any]:
    config = runtime.config
    view: dict[str, Any] = {name: getattr(config, name) for name in LIVE_CONFIG}
    for name in LIVE_SPECIAL:
        value = getattr(config, name)
        view[name] = list(value) if isinstance(value, tuple) else value
    view.update(
        host=config.host,
        port=config.port,
        data_dir=str(config.data_dir),
        auto_approve=config.auto_approve,
    )
    return view


def realism(runtime: Runtime, request: Request) -> Response:
    view = config_view(runtime)
    return Response.json(
        200,
        {
            "counts": runtime.stats.realism(),
            "early_retry_routes": runtime.stats.early_routes(),
            "profile": runtime.config.profile,
            "time_scale": runtime.config.time_scale,
            "values": {name: view.get(name) for name in SOURCES},
            "sources": SOURCES,
        },
    )


def get_config(runtime: Runtime, request: Request) -> Response:
    return Response.json(200, config_view(runtime))


def _special(name: str, value: Any) -> Any:
    """A validated value of one LIVE_SPECIAL field (profile excepted)."""
    if name in SHARES:
        return parse_share(value, name)
    if name in RANGES:
        return parse_range(value, name)
    if name == "seed":
        if not isinstance(value, int) or isinstance(value, bool):
            raise ControlError("'seed' must be an integer")
        return value
    if not isinstance(value, bool):
        raise ControlError(f"'{name}' must be true or false")
    return value


def set_config(runtime: Runtime, request: Request) -> Response:
    payload = _object(request)
    unknown = set(payload) - set(LIVE_CONFIG) - set(LIVE_SPECIAL)
    if unknown:
        raise ControlError(f"unknown or read-only config fields: {sorted(unknown)}")
    reprofile = "profile" in payload  # null: back to the fast defaults
    profile = payload.pop("profile", None)
    if profile is not None and not isinstance(profile, str):
        raise ControlError("'profile' must be a profile name or null")
    changes: dict[str, Any] = {}
    try:
        for name, value in payload.items():
            if name in LIVE_SPECIAL:
                changes[name] = _special(name, value)
                continue
            if value is None and LIVE_CONFIG[name]:
                changes[name] = None
                continue
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
                raise ControlError(f"'{name}' must be a non-negative number")
            if name == "time_scale" and value <= 0:
                raise ControlError("'time_scale' must be a positive number")
            changes[name] = value
        if profile is not None and profile not in PROFILES:
            raise ProfileError(f"unknown profile {profile!r}; known: {sorted(PROFILES)}")
    except ProfileError as exc:
        raise ControlError(str(exc)) from None
    if reprofile:  # validated first: all or nothing
        apply_profile(runtime.config, profile)
    for name, value in changes.items():
        if name in ("quota_bytes", "token_ttl") and value is not None:
            value = int(value)
        if name in NO_LIMIT_AT_ZERO and value == 0:
            value = None  # 0 means "no limit", like leaving it unset
        setattr(runtime.config, name, value)
    return Response.json(200, config_view(runtime))


def reset(runtime: Runtime, request: Request) -> Response:
    runtime.reset()
    return Response.json(200, {"reset": True})


ENDPOINTS: dict[tuple[str, str], Callable[[Runtime, Request], Response]] = {
    ("GET", ""): info,
    ("POST", "tokens"): new_token,
    ("POST", "tokens/expire"): expire_token,
    ("POST", "tokens/revoke"): revoke_token,
    ("POST", "faults"): add_faults,
    ("GET", "faults"): list_faults,
    ("DELETE", "faults"): clear_faults,
    ("GET", "stats"): stats,
    ("GET", "realism"): realism,
    ("GET", "concurrency"): concurrency,
    ("DELETE", "concurrency"): restart_concurrency,
    ("GET", "config"): get_config,
    ("POST", "config"): set_config,
    ("POST", "reset"): reset,
}
