#!/usr/bin/env python3
"""Newcomer entry point: `python3 dev.py demo` and `python3 dev.py test`.

Both bootstrap `.venv` (stdlib only until then) so that a fresh machine with Python >= 3.9
and git needs nothing else. The venv is reinstalled whenever pyproject.toml changes.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
STAMP = VENV / ".dvc-dropbox-installed"


def venv_python() -> Path:
    return VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def ensure_venv() -> Path:
    if sys.version_info < (3, 9):  # noqa: UP036 (this script must say so on old Pythons)
        sys.exit(f"dvc-dropbox needs Python >= 3.9, this is {sys.version.split()[0]}")
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    python = venv_python()
    if python.exists() and STAMP.exists() and STAMP.read_text() == wanted:
        return python
    if not python.exists():
        print(f"creating {VENV} ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    print("installing dvc-dropbox and its test tools into .venv ...", flush=True)
    pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True)
    subprocess.run([*pip, "-e", f"{ROOT}[tests]"], check=True)
    STAMP.write_text(wanted)
    return python


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in {"demo", "test", "bench", "env"}:
        print(__doc__.strip())
        print("\nusage: python3 dev.py demo | test [pytest args] | bench NAME [args] | env")
        return 2
    command, rest = argv[0], argv[1:]
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
    # One worker per core (each starts its own emulator), unless the caller chose.
    parallel = [] if any(a == "-n" or a.startswith("-n") for a in rest) else ["-n", "auto"]
    code = subprocess.call([str(python), "-m", "pytest", *parallel, *rest], cwd=ROOT)
    if code == 5:
        print("pytest collected no tests: that is a failure, not a pass", file=sys.stderr)
        return 1
    return code or lint


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
