"""The two patches that make DVC know `dropbox://` (see dvc-integration.md §1.6)."""

from __future__ import annotations

import sys
from types import ModuleType
from typing import Any, Callable

FS_CLASS = "dvc_dropbox.dvc.DropboxFileSystem"
MISSING_DEPS = "dropbox is supported, but requires 'dvc-dropbox' to be installed"


MiB = 1024 * 1024
CHUNK_SIZE_RULE = (
    "chunk_size must be a multiple of 4 MiB below 150 MiB (4, 8, ... 148; default 48), "
    "written as e.g. 48MiB, 48M or 48"
)


def chunk_size_bytes(value: object) -> int:
    """'48MiB', '48M', '48 mib' or 48 (MiB) -> bytes; ValueError(CHUNK_SIZE_RULE...) otherwise.

    Stdlib only, so the config schema can refuse a bad value at `dvc remote modify`.
    """
    text = str(value).strip()
    number = text.lower()
    for suffix in ("mib", "mb", "m"):
        if number.endswith(suffix):
            number = number[: -len(suffix)].strip()
            break
    try:
        size = int(number) * MiB
    except ValueError:
        raise ValueError(f"{CHUNK_SIZE_RULE}; not {text!r}") from None
    if size <= 0 or size % (4 * MiB) or size >= 150 * MiB:
        raise ValueError(f"{CHUNK_SIZE_RULE}; not {text}")
    return size


def remote_options(config_schema: ModuleType) -> dict[Any, Any]:
    """Options `dvc remote add/modify` accept for a dropbox remote, besides DVC's common ones."""
    from voluptuous import All, Coerce, Invalid, Range

    def chunk_size(value: Any) -> str:
        try:
            chunk_size_bytes(value)
        except ValueError as exc:
            raise Invalid(str(exc)) from None
        return str(value)

    return {
        "app_key": str,
        "app_secret": str,
        "chunk_size": chunk_size,
        "batch_size": All(Coerce(int), Range(min=1, max=1000)),
        "timeout": All(Coerce(float), Range(min=1)),
        "path_root": str,
        **config_schema.REMOTE_COMMON,
    }


def checking_dropbox_urls(validator: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """Wrap DVC's remote validator so that a malformed `dropbox://` URL fails `dvc remote add`.

    Without this, `dropbox:///x` (empty netloc) passes as a *local* remote and `dropbox://a//b`
    is only refused at the first push.
    """
    from voluptuous import Invalid

    from .urls import is_dropbox_url, url_problem

    def validate(data: Any) -> Any:
        url = data.get("url") if isinstance(data, dict) else None
        if is_dropbox_url(url):
            problem = url_problem(url)
            if problem is not None:
                from .urls import RIGHT_FORM

                raise Invalid(f"invalid Dropbox URL {url!r}: {problem}; {RIGHT_FORM}")
        return validator(data)

    return validate


def register_fs(dvc_objects_fs: ModuleType) -> None:
    dvc_objects_fs.known_implementations.setdefault(
        "dropbox", {"class": FS_CLASS, "err": MISSING_DEPS}
    )


def register_schema(config_schema: ModuleType) -> None:
    if "dropbox" not in config_schema.REMOTE_SCHEMAS:
        config_schema.REMOTE_SCHEMAS["dropbox"] = remote_options(config_schema)
    # ByUrl copies its mapping when called, so the validator must be rebuilt to see our key.
    by_url = config_schema.ByUrl(config_schema.REMOTE_SCHEMAS)
    config_schema.SCHEMA["remote"][str] = checking_dropbox_urls(by_url)
    config = sys.modules.get("dvc.config")
    if config is not None and hasattr(config, "get_compiled_schema"):
        # Only on late install: a schema compiled before the patch holds the old validator.
        config.get_compiled_schema.memory.clear()


def register() -> None:
    """Apply both patches now (tests, `pip install --target`, frozen builds)."""
    import dvc.config_schema
    import dvc_objects.fs

    register_fs(dvc_objects.fs)
    register_schema(dvc.config_schema)
