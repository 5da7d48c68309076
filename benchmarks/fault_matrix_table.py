"""The fault matrix as a table: each fault of tests/helpers/fault_matrix.py against a checkout.

    .venv/bin/python benchmarks/fault_matrix_table.py run --venv /path/to/checkout/.venv \\
        --out before.json [--only NAME ...] [--timeout 180]
    .venv/bin/python benchmarks/fault_matrix_table.py table before.json after.json

`run` uses *that* checkout's `dvc` and emulator (`VENV/bin/python -m dropbox_emulator`), this
checkout's scenarios and launcher, and records per fault: the exit status of the command that
met the fault, its wall time, and its first ERROR line (tokens masked, shortened). A scenario
the other emulator cannot stage (an option or fault field it lacks) is "n/a (knob missing)".
Every command is bounded (`--timeout`, default 180 s; a hung one is killed and shown so).
`table` prints the markdown before -> after table. Only the bounds are asserted nowhere: this is a
report, the assertions are in tests/integration/plugin/test_fault_matrix.py.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.helpers import fault_matrix as fm  # noqa: E402

from dropbox_emulator.testing import EmulatorStartError  # noqa: E402

MESSAGE_CHARS = 110


def shorten(line: str) -> str:
    line = fm.ACCESS_TOKEN.sub("sl.***", line)
    line = re.sub(r"^ERROR:\s*", "", line).replace("|", "\\|")
    return line if len(line) <= MESSAGE_CHARS else line[: MESSAGE_CHARS - 1] + "…"


def first_message(output: str) -> str:
    errors = fm.error_lines(output)
    if errors:
        extra = f" (+{len(errors) - 1} more ERROR lines)" if len(errors) > 1 else ""
        return shorten(errors[0]) + extra
    for line in output.splitlines():
        if line.startswith("WARNING"):
            return "warning: " + shorten(line.removeprefix("WARNING: "))
    return ""


def for_the_table(fault: fm.Fault) -> fm.Fault:
    """The frozen server with the checkout's default timeouts: what a user meets."""
    if fault.name == "frozen-server":
        return dataclasses.replace(fault, options=())
    return fault


def run_one(fault: fm.Fault, project: fm.Project, bin_dir: Path, work: Path) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix=fault.name + "-", dir=work))
    matrix = fm.Matrix(for_the_table(fault), project, tmp, bin_dir)
    row: dict[str, Any] = {"fault": fault.name}
    try:
        with matrix.started():
            outcome = matrix.run_fault()
    except (fm.KnobMissing, EmulatorStartError) as exc:
        row.update(exit="n/a", seconds=None, message="n/a (knob missing)", detail=str(exc)[:300])
        return row
    except AssertionError as exc:  # the unfaulted set-up push failed
        row.update(exit="n/a", seconds=None, message="set-up failed: " + shorten(str(exc)))
        return row
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    output = outcome.output
    if "extra keys not allowed" in output:
        row.update(exit="n/a", seconds=None, message="n/a (remote option missing)")
        return row
    exit_status: Any = outcome.returncode
    if exit_status is None:
        exit_status = f"hung (killed at {fm.COMMAND_TIMEOUT_S:.0f} s)"
    elif exit_status == -9:
        exit_status = "-9 (killed by the test)"
    flags = []
    if "Traceback" in output:
        flags.append("traceback")
    if "unexpected error" in output:
        flags.append("unexpected error")
    if fm.REPR.search(output):
        flags.append("repr")
    row.update(
        exit=exit_status,
        seconds=round(outcome.seconds, 1),
        message=first_message(output),
        errors=len(fm.error_lines(output)),
        flags=flags,
    )
    return row


def cmd_run(args: argparse.Namespace) -> None:
    venv = Path(args.venv).resolve()
    bin_dir = venv / "bin"
    fm.COMMAND_TIMEOUT_S = args.timeout
    fm.WATCH_TIMEOUT_S = min(fm.WATCH_TIMEOUT_S, args.timeout)
    faults = [f for f in fm.FAULTS if not args.only or f.name in args.only]
    rows = []
    with tempfile.TemporaryDirectory(prefix="fault-matrix-table-") as work_dir:
        work = Path(work_dir)
        project = fm.build_project(work / "template", str(bin_dir / "dvc"))
        for fault in faults:
            started = time.monotonic()
            row = run_one(fault, project, bin_dir, work)
            rows.append(row)
            print(
                f"{fault.name}: exit {row['exit']}, {row['seconds']} s, {row['message']} "
                f"[{time.monotonic() - started:.0f} s]",
                file=sys.stderr,
                flush=True,
            )
    Path(args.out).write_text(json.dumps({"venv": str(venv), "rows": rows}, indent=1) + "\n")


def cell(row: dict[str, Any]) -> str:
    if row["seconds"] is None:
        return f"{row['message']}"
    flags = f" **{', '.join(row['flags'])}**" if row.get("flags") else ""
    count = row.get("errors", 0)
    lines = f"; {count} ERROR lines" if count > 1 else ""
    message = re.sub(r" \(\+\d+ more ERROR lines\)$", "", row["message"]) or "(no error)"
    return f"exit {row['exit']}, {row['seconds']:.0f} s{lines}{flags}: {message}"


def cmd_table(args: argparse.Namespace) -> None:
    before = {r["fault"]: r for r in json.loads(Path(args.before).read_text())["rows"]}
    after = {r["fault"]: r for r in json.loads(Path(args.after).read_text())["rows"]}
    print("| fault | before (4cb5917) | after |")
    print("|---|---|---|")
    for name, row in after.items():
        old = before.get(name)
        print(f"| {name} | {cell(old) if old else 'not run'} | {cell(row)} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run_parser = sub.add_parser("run")
    run_parser.add_argument("--venv", required=True, help="the checkout's virtual environment")
    run_parser.add_argument("--out", required=True, help="JSON file for the results")
    run_parser.add_argument("--only", nargs="*", help="fault names (default: all)")
    run_parser.add_argument("--timeout", type=float, default=180.0, help="bound per command (s)")
    table_parser = sub.add_parser("table")
    table_parser.add_argument("before")
    table_parser.add_argument("after")
    args = parser.parse_args()
    if args.command == "run":
        cmd_run(args)
    else:
        cmd_table(args)


if __name__ == "__main__":
    main()
