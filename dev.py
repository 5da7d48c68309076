#!/usr/bin/env python3
"""Newcomer entry point: `python3 dev.py demo` and `python3 dev.py test`.

Both bootstrap `.venv` (stdlib only until then) so that a fresh machine with Python >= 3.9
and git needs nothing else. The venv is reinstalled whenever pyproject.toml changes.

`test` also runs OLDEST_DVC_TESTS against the oldest DVC that pyproject.toml allows, in
`.venv-oldest-dvc` (re-created whenever pyproject.toml changes), unless the args select tests
(paths, -m or -k); `test-oldest [pytest args]` runs only that part. `test -m unit` is the inner
loop: ruff, mypy and the pure-logic tests of tests/unit, in seconds.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
OLDEST_VENV = ROOT / ".venv-oldest-dvc"
STAMP_NAME = ".dvc-dropbox-installed"

# Registration, the user guide's push/pull walk-through, and the URL refusals that depend on how
# DVC rewrites local paths in its config (~1 min with 2 workers, once .venv-oldest-dvc exists).
OLDEST_DVC_TESTS = [
    "tests/integration/plugin/test_registration.py",
    "tests/integration/plugin/test_dvc_versions.py",
    "tests/integration/plugin/test_bad_input.py::test_bad_urls_refused_at_remote_add",
    "tests/integration/plugin/test_bad_input.py::test_bad_url_in_hand_edited_config",
    "tests/integration/plugin/test_bad_input.py::test_bad_url_refused_by_url_commands",
    # Each hook of dvc_hooks wraps DVC's real function, whose signature the wrapper relies on.
    "tests/unit/test_dvc_hooks.py",
    # ... and DVC's copies reach them also through names dvc-data binds at import time.
    "tests/integration/plugin/test_dvc_hooks_cli.py",
]
# DVC before 3.66 requires pathspec>=0.10.3 with no upper bound but cannot import pathspec 1.x
# (`dvc init` fails: cannot import name '_DIR_MARK'), so that is what its users have installed.
OLDEST_DVC_PINS = ["pathspec<1"]


def venv_python(venv: Path = VENV) -> Path:
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def oldest_dvc() -> str:
    """The lower bound of the `dvc` requirement in pyproject.toml, e.g. "3.46"."""
    found = re.search(r'"dvc>=([0-9][0-9.]*)\s*[,"]', (ROOT / "pyproject.toml").read_text())
    if found is None:
        sys.exit('pyproject.toml: no "dvc>=X,<Y" requirement to take the oldest DVC from')
    return found.group(1)


def ensure_venv(venv: Path = VENV, pins: tuple[str, ...] = (), fresh: bool = False) -> Path:
    """`venv` with the project (editable) and its test tools, plus `pins`, up to date.

    `fresh`: a stale venv is deleted rather than upgraded, so nothing newer than the pins lingers.
    """
    if sys.version_info < (3, 9):  # noqa: UP036 (this script must say so on old Pythons)
        sys.exit(f"dvc-dropbox needs Python >= 3.9, this is {sys.version.split()[0]}")
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes())
    digest.update("\n".join(pins).encode())
    wanted = digest.hexdigest()
    python, stamp = venv_python(venv), venv / STAMP_NAME
    if python.exists() and stamp.exists() and stamp.read_text() == wanted:
        return python
    if fresh and venv.exists():
        shutil.rmtree(venv)
    if not python.exists():
        print(f"creating {venv} ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    extra = f" with {' '.join(pins)}" if pins else ""
    print(f"installing dvc-dropbox and its test tools into {venv.name}{extra} ...", flush=True)
    pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True)
    subprocess.run([*pip, "-e", f"{ROOT}[tests]", *pins], check=True)
    stamp.write_text(wanted)
    return python


def ensure_oldest_venv() -> Path:
    pins = (f"dvc[testing]=={oldest_dvc()}", *OLDEST_DVC_PINS)
    return ensure_venv(OLDEST_VENV, pins, fresh=True)


def names_tests(args: list[str]) -> bool:
    """Whether pytest args select tests (by path, -m or -k): then only those run, newest DVC."""
    by_path = any(not a.startswith("-") and (ROOT / a.split("::")[0]).exists() for a in args)
    return by_path or any(a in ("-m", "-k") or a.startswith(("-m", "-k")) for a in args)


def run_pytest(python: Path, args: list[str], env: dict[str, str] | None = None) -> int:
    code = subprocess.call([str(python), "-m", "pytest", *args], cwd=ROOT, env=env)
    if code == 5:
        print("pytest collected no tests: that is a failure, not a pass", file=sys.stderr)
        return 1
    return code


def worker_args(args: list[str]) -> list[str]:
    """pytest-xdist's -n as given in `args`, else one worker per core."""
    for i, arg in enumerate(args):
        if arg == "-n":
            return args[i : i + 2]
        if arg.startswith("-n"):
            return [arg]
    return ["-n", "auto"]


def run_oldest(args: list[str]) -> int:
    """OLDEST_DVC_TESTS (or the tests `args` name) with the oldest DVC pyproject.toml allows."""
    python = ensure_oldest_venv()
    version = subprocess.run(
        [str(python), "-c", "import dvc; print(dvc.__version__)"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    selection = [] if names_tests(args) else OLDEST_DVC_TESTS
    print(f"\n== the same with the oldest supported DVC, {version}", flush=True)
    env = {**os.environ, "DVC_DROPBOX_OLDEST_DVC": oldest_dvc()}
    return run_pytest(python, ["-p", "no:cacheprovider", *selection, *args], env)


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in {"demo", "test", "test-oldest", "bench", "env"}:
        print(__doc__.strip())
        print(
            "\nusage: python3 dev.py demo | test [pytest args] | test-oldest [pytest args]"
            " | bench NAME [args] | env"
        )
        return 2
    command, rest = argv[0], argv[1:]
    # One worker per core (each starts its own emulator), unless the caller chose.
    workers = [] if any(a == "-n" or a.startswith("-n") for a in rest) else ["-n", "auto"]
    if command == "test-oldest":
        return run_oldest([*workers, *rest])
    python = ensure_venv()
    if command == "env":
        return 0
    if command == "demo":
        return subprocess.call([str(python), str(ROOT / "scripts" / "demo.py"), *rest])
    if command == "bench":
        if not rest:
            print("usage: python3 dev.py bench NAME [args]  (NAME: a script in benchmarks/)")
            return 2
        script = ROOT / "benchmarks" / f"{rest[0].removesuffix('.py')}.py"
        return subprocess.call([str(python), str(script), *rest[1:]])
    lint = subprocess.call([str(python), "-m", "ruff", "check", str(ROOT)], cwd=ROOT)
    # design.md's rules: types checked (mypy src, configured in pyproject.toml).
    lint = lint or subprocess.call([str(python), "-m", "mypy"], cwd=ROOT)
    code = run_pytest(python, [*workers, *rest])
    # Users pin DVC in their projects: the oldest DVC we allow must work too (README, Installing).
    # Only the worker count carries over: the other args select and shape the main run.
    oldest = 0 if names_tests(rest) else run_oldest(worker_args(rest))
    return code or oldest or lint


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
