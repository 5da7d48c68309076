"""Run the real `dvc` command (the one in this virtual environment) in a subprocess."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path
from typing import Any

BIN = Path(sys.executable).parent
DVC = str(BIN / "dvc")
CLI_TIMEOUT_S = 600


def run(
    args: list[str], cwd: Path, env: dict[str, str], check: bool = True
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        args, cwd=cwd, env=env, capture_output=True, text=True, timeout=CLI_TIMEOUT_S
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"{args} exited {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
        )
    return proc


def dvc(cwd: Path, env: dict[str, str], *args: str, check: bool = True) -> Any:
    return run([DVC, *args], cwd, env, check=check)


def make_repo(path: Path, env: dict[str, str]) -> Path:
    """A fresh `git init && dvc init` repository."""
    path.mkdir(parents=True, exist_ok=True)
    run(["git", "init", "-q"], path, env)
    dvc(path, env, "init", "-q")
    return path


def remote_files(sdk: Any, folder: str) -> dict[str, Any]:
    """Every file below the Dropbox folder, relative path -> FileMetadata (via the SDK, not the
    plugin); {} if the folder does not exist."""
    from dropbox import exceptions, files

    try:
        result = sdk.files_list_folder(folder, recursive=True)
    except exceptions.ApiError as exc:
        if exc.error.is_path() and exc.error.get_path().is_not_found():
            return {}
        raise
    entries = list(result.entries)
    for _ in range(10_000):
        if not result.has_more:
            break
        result = sdk.files_list_folder_continue(result.cursor)
        entries.extend(result.entries)
    prefix = folder.lower().rstrip("/") + "/"
    return {
        e.path_lower[len(prefix) :]: e
        for e in entries
        if isinstance(e, files.FileMetadata) and e.path_lower.startswith(prefix)
    }


def remote_objects(sdk: Any, folder: str) -> set[str]:
    """Relative paths of every file below the Dropbox folder."""
    return set(remote_files(sdk, folder))


def md5_object(content: bytes) -> str:
    digest = hashlib.md5(content).hexdigest()
    return f"files/md5/{digest[:2]}/{digest[2:]}"


def assert_clean_error(proc: subprocess.CompletedProcess[str], *needles: str) -> str:
    """Exit != 0, every needle in the output, and no Python traceback."""
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, output
    assert "Traceback" not in output, output
    for needle in needles:
        assert needle in output, f"{needle!r} not in:\n{output}"
    return output
