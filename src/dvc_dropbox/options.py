"""Remote and storage options: their defaults, and the one parser of each (stdlib only at import).

The config schema (`_register`), the DVC adapter and the fsspec filesystem all parse options here,
so a value means the same everywhere and a bad one gets the same message. The start-up hook reaches
this module while DVC builds its config schema: nothing outside the stdlib is imported at start-up.
"""

from __future__ import annotations

import contextlib
import re
from typing import Any, Callable, Optional

MiB = 1024 * 1024
# Dropbox's block: content_hash hashes 4 MiB blocks (dropbox-api.md §4) and upload_session_append
# wants chunks in multiples of it (§3.1), so it is also the natural read size.
BLOCK_SIZE = 4 * MiB
CHUNK_LIMIT = 150 * MiB  # one request's maximum body
# Upload-session chunk: rclone measured throughput rising up to ~48-128 MiB (dropbox-api.md §3.1).
DEFAULT_CHUNK_SIZE = 48 * MiB
DEFAULT_BATCH_SIZE = 1000  # entries per finish_batch_v2 / delete_batch (Dropbox's maximum)
# Requests in flight (`-j`): Dropbox is latency-bound, so throughput is about jobs / round trip.
# Files waiting for a commit do not hold one since batches fill (dvc_put.py), so this no longer
# caps a batch. Measured when it still did: benchmarks/push_small_files.py, 2000 x 16 KiB, pushed
# 11-16 % faster with 64 than with 32 (128 only 4 % more, CPU-bound on 2 cores).
DEFAULT_JOBS = 64
# The waits Dropbox asks for (retry_after), added up, that one operation may wait out before it
# gives up: several of its 300 s contention waits (README "How it is fast").
DEFAULT_RETRY_WAIT_LIMIT = 1800.0
# Read timeout: every route the plugin uses answers within seconds (long work is an async job it
# polls, and a download's timeout is between bytes), so a silent server is told from a slow one
# soon: two tries of a silent server take under a minute (README "Remote options").
DEFAULT_TIMEOUT = 25.0
# Connecting, TLS handshake included (urllib3 times the handshake with the connect timeout).
DEFAULT_CONNECT_TIMEOUT = 10.0

CHUNK_SIZE_RULE = (
    "chunk_size must be a multiple of 4 MiB below 150 MiB: a number of MiB (4, 8, ... 148; "
    "default 48; also written 48MiB or 48M) or of bytes (e.g. 50331648 for 48 MiB)"
)
_MIB_SUFFIXES = ("mib", "mb", "m")


def _refuse(message: str) -> Exception:
    """The error for a bad option: a DropboxConfigError (a ValueError, as the schema wants)."""
    from .errors import DropboxConfigError  # imports DVC: only once something is wrong

    return DropboxConfigError(message)


def parse_chunk_size(value: object) -> int:
    """The one `chunk_size` parser (config schema, DVC adapter, fsspec filesystem) -> bytes.

    None or "" is the default. With a MiB suffix the number is MiB. A plain number (str or int) is
    MiB below 150 and bytes from 4 MiB (4194304) on: every accepted MiB count is below 150 and
    every accepted byte count is at least 4194304, so no value can mean both.
    """
    if value is None or value == "":
        return DEFAULT_CHUNK_SIZE
    text = str(value).strip()
    number = text.lower()
    unit: Optional[int] = None
    for suffix in _MIB_SUFFIXES:
        if number.endswith(suffix):
            number, unit = number[: -len(suffix)].strip(), MiB
            break
    if not (number.isascii() and number.isdigit()):
        raise _refuse(f"{CHUNK_SIZE_RULE}; not {text!r}")
    count = int(number)
    if unit is None:
        unit = MiB if count < CHUNK_LIMIT // MiB else 1
    size = count * unit
    if size <= 0 or size % BLOCK_SIZE or size >= CHUNK_LIMIT:
        raise _refuse(f"{CHUNK_SIZE_RULE}; not {text!r}")
    return size


# Every accepted `path_root` form, one line each: (how the message names it, test).
# auth/client.py turns the value into the SDK's PathRoot.
PATH_ROOT_FORMS: tuple[tuple[str, Callable[[str], bool]], ...] = (
    ("'home'", lambda value: value == "home"),
    ("'root'", lambda value: value == "root"),
    ("a namespace id (digits)", lambda value: re.fullmatch("[0-9]+", value) is not None),
)


def path_root_value(value: object) -> str:
    """`path_root` as configured, or ValueError naming every accepted form."""
    text = str(value)
    if any(test(text) for _, test in PATH_ROOT_FORMS):
        return text
    names = [name for name, _ in PATH_ROOT_FORMS]
    forms = names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"
    raise _refuse(f"path_root must be {forms}, not {text!r}")



# What `storage_options` may set: the remote options of a DVC remote (README "Remote options").
STORAGE_OPTIONS = (
    "app_key",
    "app_secret",
    "chunk_size",
    "batch_size",
    "jobs",
    "timeout",
    "retry_wait_limit",
    "connect_timeout",
    "path_root",
    "version_aware",
    "pack",
)
# fsspec's own options, which every filesystem accepts; nothing here is cached or asynchronous,
# so they change nothing, but refusing them would break generic callers.
FSSPEC_OPTIONS = frozenset(
    {"use_listings_cache", "listings_expiry_time", "max_paths", "asynchronous", "loop"}
)
CREDENTIAL_OPTIONS = frozenset({"token", "access_token", "refresh_token", "oauth2_access_token"})
_TRUE = frozenset({"true", "yes", "on", "1"})
_FALSE = frozenset({"false", "no", "off", "0", ""})


def check_storage_options(extra: dict[str, Any]) -> None:
    """Refuse options DropboxFS does not know (fsspec would otherwise drop them silently)."""
    import difflib

    unknown = sorted(set(extra) - FSSPEC_OPTIONS)
    if not unknown:
        return
    name = unknown[0]
    if name in CREDENTIAL_OPTIONS:
        # dropboxdrivefs takes `token=`; here credentials come as for `dvc`, never from code.
        from .auth.credentials import ENV_ACCESS_TOKEN, ENV_APP_KEY, ENV_REFRESH_TOKEN

        raise _refuse(
            f"Dropbox credentials are not a storage option ({name!r}): set {ENV_REFRESH_TOKEN} "
            f"with {ENV_APP_KEY} (or the app_key option), or {ENV_ACCESS_TOKEN}, or run "
            "`dvc-dropbox login --app-key <app key>` once to save them to the credentials file"
        )
    close = difflib.get_close_matches(name, STORAGE_OPTIONS, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise _refuse(
        f"unknown Dropbox storage option {name!r}{hint}; "
        f"the options are {', '.join(STORAGE_OPTIONS)}"
    )


def text_option(name: str, value: Any) -> Optional[str]:
    if value is None:
        return None
    if not isinstance(value, str):
        raise _refuse(f"{name} must be a string, not {type(value).__name__}")
    return value.strip() or None


def int_option(name: str, value: Any, default: int, low: int, high: Optional[int]) -> int:
    if value is None or (isinstance(value, str) and not value.strip()):
        return default
    number: Optional[int] = None
    if not isinstance(value, bool) and (not isinstance(value, float) or value.is_integer()):
        with contextlib.suppress(TypeError, ValueError):
            number = int(value.strip() if isinstance(value, str) else value)
    if number is None or number < low or (high is not None and number > high):
        allowed = f"from {low} to {high}" if high is not None else f">= {low}"
        raise _refuse(f"{name} must be a whole number {allowed}, not {value!r}")
    return number


def seconds_option(name: str, value: Any, default: float) -> float:
    if value is None or (isinstance(value, str) and not value.strip()):
        return default
    seconds: Optional[float] = None
    if not isinstance(value, bool):
        with contextlib.suppress(TypeError, ValueError):
            seconds = float(value)
    # Below a second every Dropbox request would time out; NaN/inf would never time out.
    if seconds is None or not 1 <= seconds < float("inf"):
        raise _refuse(f"{name} must be a number of seconds >= 1, not {value!r}")
    return seconds


def bool_option(name: str, value: Any) -> bool:
    if isinstance(value, bool) or value is None:
        return bool(value)
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise _refuse(f"{name} must be true or false, not {value!r}")

