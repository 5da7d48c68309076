"""The two patches that make DVC know `dropbox://` (see dvc-integration.md §1.6)."""

from __future__ import annotations

import sys
from types import ModuleType
from typing import Any

FS_CLASS = "dvc_dropbox.dvc.DropboxFileSystem"
MISSING_DEPS = "dropbox is supported, but requires 'dvc-dropbox' to be installed"


def remote_options(config_schema: ModuleType) -> dict[Any, Any]:
    """Options `dvc remote add/modify` accept for a dropbox remote, besides DVC's common ones."""
    from voluptuous import All, Coerce, Range

    return {
        "app_key": str,
        "app_secret": str,
        # A size such as "48MiB", "48M" or "48" (MiB); the fs checks it (multiple of 4 MiB, < 150).
        "chunk_size": Coerce(str),
        "batch_size": All(Coerce(int), Range(min=1, max=1000)),
        "timeout": All(Coerce(float), Range(min=1)),
        "path_root": str,
        **config_schema.REMOTE_COMMON,
    }


def register_fs(dvc_objects_fs: ModuleType) -> None:
    dvc_objects_fs.known_implementations.setdefault(
        "dropbox", {"class": FS_CLASS, "err": MISSING_DEPS}
    )


def register_schema(config_schema: ModuleType) -> None:
    if "dropbox" not in config_schema.REMOTE_SCHEMAS:
        config_schema.REMOTE_SCHEMAS["dropbox"] = remote_options(config_schema)
    # ByUrl copies its mapping when called, so the validator must be rebuilt to see our key.
    config_schema.SCHEMA["remote"][str] = config_schema.ByUrl(config_schema.REMOTE_SCHEMAS)
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
