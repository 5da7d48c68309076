"""The README's CI recipe for the emulator works exactly as written: run verbatim in bash, then
`dvc push` / `dvc pull` with the environment it leaves behind."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.helpers.emulator import EmulatorProcess

from .cli import BIN, dvc, make_repo
from .conftest import isolated_cli_env

README = Path(__file__).resolve().parents[3] / "README.md"
HEADING = "### In your own CI"
RECIPE_TIMEOUT_S = 120
STOP_TIMEOUT_S = 20


def readme_recipe() -> str:
    """The first ```bash block after the recipe's heading, as a reader would copy it."""
    text = README.read_text(encoding="utf-8")
    assert HEADING in text, f"README.md has no {HEADING!r} section"
    section = text.split(HEADING, 1)[1]
    start = section.index("```bash\n") + len("```bash\n")
    end = section.index("\n```", start)
    return section[start:end] + "\n"


def fresh_machine_env(emulator: EmulatorProcess, home: Path) -> dict[str, str]:
    """A CI job's environment: dvc-dropbox installed (on PATH), nothing of Dropbox's set."""
    env = isolated_cli_env(emulator, {"access_token": "", "refresh_token": ""}, home)
    for key in list(env):
        if key.startswith("DROPBOX_") or key == "REQUESTS_CA_BUNDLE":
            del env[key]
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    return env


def stop_background_emulator(pid_file: Path) -> None:
    """The recipe leaves the emulator running (as it says); stop that process, and only it."""
    text = pid_file.read_text().strip() if pid_file.exists() else ""
    if not text.isdigit():
        return
    pid = int(text)
    cmdline = Path(f"/proc/{pid}/cmdline")
    if cmdline.exists() and b"dropbox-emulator" not in cmdline.read_bytes():
        return  # that pid is gone and was reused: not ours to stop
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT_S
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


@pytest.mark.skipif(shutil.which("curl") is None, reason="the README's recipe calls curl")
@pytest.mark.skipif(shutil.which("python3") is None, reason="the README's recipe calls python3")
def test_readme_ci_recipe_runs_verbatim_then_push_and_pull(
    tmp_path: Path, emulator: EmulatorProcess
) -> None:
    recipe = readme_recipe()
    out = tmp_path / "recipe-out"
    out.mkdir()
    env = fresh_machine_env(emulator, tmp_path / "home")
    env["RECIPE_OUT"] = str(out)
    script = tmp_path / "ci.sh"
    # Around the verbatim snippet: remember the emulator's pid even if the snippet fails, and
    # hand back the environment it built.
    script.write_text(
        'trap \'echo "${EMULATOR_PID:-}" > "$RECIPE_OUT/pid"\' EXIT\n'
        + recipe
        + 'env -0 > "$RECIPE_OUT/env"\n'
    )
    stdout, stderr = tmp_path / "ci.stdout", tmp_path / "ci.stderr"
    try:
        # Files, not pipes: the emulator the snippet leaves in the background would hold a pipe.
        with stdout.open("w") as so, stderr.open("w") as se:
            # bash -eo pipefail: how GitHub Actions runs a `run:` step.
            proc = subprocess.run(
                ["bash", "-eo", "pipefail", str(script)],
                cwd=tmp_path,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=so,
                stderr=se,
                timeout=RECIPE_TIMEOUT_S,
            )
        assert proc.returncode == 0, f"{stdout.read_text()}\n{stderr.read_text()}"
        recipe_env = dict(
            item.split("=", 1) for item in (out / "env").read_text().split("\0") if "=" in item
        )
        run_push_and_pull(tmp_path, recipe_env, emulator)
    finally:
        stop_background_emulator(out / "pid")


def run_push_and_pull(tmp_path: Path, env: dict[str, str], session: EmulatorProcess) -> None:
    for var in ("DROPBOX_REFRESH_TOKEN", "DROPBOX_APP_KEY", "REQUESTS_CA_BUNDLE"):
        assert env.get(var), f"the recipe did not set {var}"
    host = env["DROPBOX_API_HOST"]
    assert host != session.env["DROPBOX_API_HOST"], "the recipe must start its own emulator"

    repo = make_repo(tmp_path / "repo", env)
    data = repo / "data"
    (data / "sub").mkdir(parents=True)
    (data / "a.txt").write_text("alpha\n")
    (data / "sub" / "b.bin").write_bytes(os.urandom(100_000))
    expected = {p.relative_to(data): p.read_bytes() for p in data.rglob("*") if p.is_file()}
    dvc(repo, env, "add", "data")
    dvc(repo, env, "remote", "add", "-d", "ci", f"dropbox://ci-recipe/{uuid.uuid4().hex[:12]}")
    pushed = dvc(repo, env, "push")
    assert "3 files pushed" in pushed.stdout + pushed.stderr  # 2 files + the directory object

    shutil.rmtree(data)
    shutil.rmtree(repo / ".dvc" / "cache")
    dvc(repo, env, "pull")
    got = {p.relative_to(data): p.read_bytes() for p in data.rglob("*") if p.is_file()}
    assert got == expected

    stats: dict[str, Any] = requests.get(
        f"https://{host}/_emulator/stats", verify=env["REQUESTS_CA_BUNDLE"], timeout=30
    ).json()
    # The objects went to the recipe's emulator: the two files in a pack (one append_batch), the
    # directory object alone (one upload session); one batch commits them.
    uploads = stats["requests"].get("files/upload_session/start", 0)
    uploads += stats["requests"].get("files/upload_session/append_batch", 0)
    assert uploads >= 2, stats
