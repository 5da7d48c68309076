"""The two patches that make DVC know `dropbox://` (see dvc-integration.md §1.6).

They touch only names every DVC 3.45+ has: `dvc_objects.fs.known_implementations`,
`dvc.config_schema.SCHEMA["remote"][str]` and `REMOTE_COMMON`. `REMOTE_SCHEMAS`, the mapping
DVC's `ByUrl` validator is built from, only exists since DVC 3.64 (before, the mapping is an
anonymous literal inside `SCHEMA`), so the URL validator is wrapped instead of rebuilt: dropbox
URLs are validated here, every other URL by DVC's own validator, whichever DVC this is.

Stdlib only at import: the start-up hook imports this module while DVC imports itself.
"""

from __future__ import annotations

import re
import sys
from types import ModuleType
from typing import Any, Callable, Optional

from . import urls
from .options import parse_chunk_size, path_root_value

FS_CLASS = "dvc_dropbox.adapter.DropboxFileSystem"
MISSING_DEPS = "dropbox is supported, but requires 'dvc-dropbox' to be installed"


def remote_options(config_schema: ModuleType) -> dict[Any, Any]:
    """Options `dvc remote add/modify` accept for a dropbox remote, besides DVC's common ones."""
    from voluptuous import All, Boolean, Coerce, Invalid, Range
    from voluptuous import Optional as Default

    def as_validator(parse: Callable[[object], object]) -> Callable[[Any], str]:
        def validate(value: Any) -> str:
            try:
                parse(value)
            except ValueError as exc:
                raise Invalid(str(exc)) from None
            return str(value)

        return validate

    return {
        "app_key": str,
        "app_secret": str,
        "chunk_size": as_validator(parse_chunk_size),
        "batch_size": All(Coerce(int), Range(min=1, max=1000)),
        "timeout": All(Coerce(float), Range(min=1)),
        "retry_wait_limit": All(Coerce(float), Range(min=1)),
        "connect_timeout": All(Coerce(float), Range(min=1)),
        "path_root": as_validator(path_root_value),
        # Small files in packs (upload_session/append_batch); false: one session per file.
        "pack": getattr(config_schema, "Bool", Boolean()),
        # DVC's own option (re-hash every download); DVC declares it per remote type, not in
        # REMOTE_COMMON. Objects are checked against their names here anyway (README "Integrity").
        Default("verify", default=False): getattr(config_schema, "Bool", Boolean()),
        **config_schema.REMOTE_COMMON,
    }


# DVC takes `dropbox:/x` (no netloc) for a local path and rewrites it before our validator sees
# it: relative to the config's folder (`../dropbox:/x`, `dvc remote add` validates after that
# rewrite) or resolved against it (`/repo/.dvc/dropbox:/x`, loading a hand-edited config). A
# local path with a component starting `dropbox:` is therefore such a URL: no real folder is
# named like that, and on Windows none can be.
_OTHER_SCHEME = re.compile(r"[a-z][a-z0-9+.-]*://", re.IGNORECASE)
_DROPBOX_COMPONENT = re.compile(r"(?:^|[\\/])(dropbox:.*)$", re.IGNORECASE | re.DOTALL)


def claimed_url(url: object) -> Optional[str]:
    """The `dropbox:` URL `url` was written as, or None if it is no Dropbox URL at all."""
    if not isinstance(url, str):
        return None
    if urls.is_dropbox_url(url):
        return url
    if _OTHER_SCHEME.match(url):
        return None
    found = _DROPBOX_COMPONENT.search(url)
    return found.group(1).replace("\\", "/") if found else None


def checking_dropbox_urls(
    validator: Callable[[Any], Any], options: dict[Any, Any]
) -> Callable[[Any], Any]:
    """DVC's remote validator, but every `dropbox:` URL (any case, any slashes) is ours.

    Without this, `dropbox:/x` and `dropbox:///x` (empty netloc) pass as *local* remotes and
    `dropbox://a//b` is only refused at the first push.
    """
    from voluptuous import Invalid, Schema

    schema = Schema(options)

    def validate(data: Any) -> Any:
        url = claimed_url(data.get("url")) if isinstance(data, dict) else None
        if url is None:
            return validator(data)
        message = urls.url_error(url)
        if message is not None:
            # Inside the compiled config schema (a config file, `dvc remote add/modify`) DVC
            # turns Invalid into "config file error ... @ data['remote'][<name>]". Called
            # directly, by `get_cloud_fs` for a URL typed on the command line (ls-url, get-url,
            # import-url), the same would blame a config file: say only what is wrong.
            caller = sys._getframe(1).f_globals.get("__name__", "")
            if caller.startswith("voluptuous"):
                raise Invalid(message)
            from .errors import DropboxConfigError

            raise DropboxConfigError(message)
        return schema(data)

    validate.dvc_dropbox = True  # type: ignore[attr-defined]
    return validate


def register_fs(dvc_objects_fs: ModuleType) -> None:
    dvc_objects_fs.known_implementations.setdefault(
        "dropbox", {"class": FS_CLASS, "err": MISSING_DEPS}
    )


def register_schema(config_schema: ModuleType) -> None:
    options = remote_options(config_schema)
    remote_schemas = getattr(config_schema, "REMOTE_SCHEMAS", None)  # DVC >= 3.64 only
    if isinstance(remote_schemas, dict):
        # Anyone rebuilding `ByUrl(REMOTE_SCHEMAS)` after us still knows dropbox.
        remote_schemas.setdefault("dropbox", options)
    remotes = config_schema.SCHEMA["remote"]
    if not getattr(remotes[str], "dvc_dropbox", False):
        remotes[str] = checking_dropbox_urls(remotes[str], options)
    config = sys.modules.get("dvc.config")
    memory = getattr(getattr(config, "get_compiled_schema", None), "memory", None)
    if memory is not None:
        # Only on late install: a schema compiled before the patch holds the old validator.
        memory.clear()


def register() -> None:
    """Apply both patches now (tests, `pip install --target`, frozen builds)."""
    import dvc.config_schema
    import dvc_objects.fs

    register_fs(dvc_objects.fs)
    register_schema(dvc.config_schema)
