"""The benchmarks still run: each one's `--quick` mode (tiny sizes) exits 0 and prints its verdicts.

Not a measurement (the verdicts of a smoke run are not checked); both run at once to stay short.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
BENCHMARKS = ("large_file", "remote_queries", "push_small_files")
TIMEOUT_S = 300


@pytest.mark.timeout(TIMEOUT_S + 60)
def test_quick_benchmarks_exit_0() -> None:
    procs = {}
    logs = {}
    for name in BENCHMARKS:
        # Files, not pipes: a full pipe would block a benchmark that nobody reads yet.
        logs[name] = tempfile.TemporaryFile()  # noqa: SIM115 (closed below)
        procs[name] = subprocess.Popen(
            [sys.executable, str(ROOT / "benchmarks" / f"{name}.py"), "--quick"],
            cwd=ROOT,
            stdout=logs[name],
            stderr=subprocess.STDOUT,
        )
    outputs = {}
    try:
        for proc in procs.values():
            proc.wait(TIMEOUT_S)
    finally:
        for name, proc in procs.items():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            logs[name].seek(0)
            outputs[name] = logs[name].read().decode(errors="replace")
            logs[name].close()
    for name, proc in procs.items():
        assert proc.returncode == 0, f"{name} --quick exited {proc.returncode}:\n{outputs[name]}"
        assert "| target" in outputs[name] and "verdict" in outputs[name], outputs[name]
        assert "emulator:" in outputs[name] and "machine:" in outputs[name], outputs[name]
