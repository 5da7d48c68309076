"""The user guide's walk-through with whichever DVC runs it.

`python3 dev.py test` runs this file twice: with the newest DVC (.venv) and with the oldest one
pyproject.toml allows (.venv-oldest-dvc, DVC_DROPBOX_OLDEST_DVC set to that version).
"""

from __future__ import annotations

import os
import random
import shutil
import uuid
from importlib.metadata import requires, version
from pathlib import Path
from typing import Any

from packaging.requirements import Requirement
from packaging.version import Version

from .cli import dvc, make_repo, md5_object, remote_objects

MiB = 1024 * 1024


def declared_dvc() -> Requirement:
    found = [Requirement(r) for r in requires("dvc-dropbox") or []]
    return next(r for r in found if r.name == "dvc" and r.marker is None)


def test_the_dvc_under_test_is_one_we_declare() -> None:
    installed = Version(version("dvc"))
    assert installed in declared_dvc().specifier, (installed, declared_dvc())
    oldest = os.environ.get("DVC_DROPBOX_OLDEST_DVC")
    if oldest:  # dev.py's second run: exactly the lower bound, or the bound is untested
        assert installed == Version(oldest), (installed, oldest)


def test_walk_through_push_and_pull(
    tmp_path: Path, cli_env: dict[str, str], dropbox_sdk: Any
) -> None:
    """add, remote add/modify, push from a subfolder, lose cache and data, pull, status -c."""
    folder = f"dvc/walk-{uuid.uuid4().hex[:12]}"
    repo = make_repo(tmp_path / "repo", cli_env)
    data = repo / "data"
    (data / "sub").mkdir(parents=True)
    contents = {
        "a.txt": b"first file\n",
        "sub/b.txt": b"second file\n",
        "sub/empty.bin": b"",
        # A full upload-session chunk at chunk_size 4 (MiB) and a partial one.
        "sub/big.bin": random.Random(7).randbytes(5 * MiB + 5),
    }
    for name, content in contents.items():
        (data / name).write_bytes(content)

    procs = [
        dvc(repo, cli_env, "add", "data"),
        dvc(repo, cli_env, "remote", "add", "-d", "myremote", f"dropbox://{folder}"),
        dvc(repo, cli_env, "remote", "modify", "myremote", "chunk_size", "4"),
        dvc(data / "sub", cli_env, "push"),
    ]
    stored = remote_objects(dropbox_sdk, f"/{folder}")
    assert {md5_object(c) for c in contents.values()} <= stored
    procs.append(dvc(data, cli_env, "status", "-c"))
    assert "in sync" in procs[-1].stdout

    shutil.rmtree(repo / ".dvc" / "cache")
    shutil.rmtree(data)
    procs.append(dvc(repo, cli_env, "pull"))
    for name, content in contents.items():
        assert (data / name).read_bytes() == content, name
    procs.append(dvc(repo, cli_env, "status", "-c"))
    assert "in sync" in procs[-1].stdout
    for proc in procs:
        assert "could not register" not in proc.stderr and "Traceback" not in proc.stderr
