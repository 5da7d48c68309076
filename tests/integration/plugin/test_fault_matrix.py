"""The fault matrix through the real `dvc` (issue 11, item 8): one fault at a time, then the checks.

Each fault runs against an emulator of its own (its own process, its own knobs) on a copy of one
small project: 30 small files in a folder and a file of three upload-session chunks. Every test
checks the exit status; the message (no traceback, no repr or SDK class name, no token or secret,
one cause where the fault fails every file); and that nothing was lost: every remote object has
the md5 its name says and nothing partial is left, a re-run (where the fault was transient, the
command itself) leaves `dvc status -c` in sync, and a fresh clone pulls every file byte for byte.
The scenarios live in tests/helpers/fault_matrix.py, shared with benchmarks/fault_matrix_table.py.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Callable

import pytest

from tests.helpers.fault_matrix import (
    CHANGED,
    FAULTS,
    SLOW_DOWN,
    Fault,
    Matrix,
    Outcome,
    Project,
    assert_clean_message,
    assert_no_secrets,
    assert_remote_intact,
    build_project,
    dvc_status_in_sync,
    fresh_pull_matches,
    md5_object,
)
from tests.integration.plugin.cli import BIN, DVC

MARKS: dict[str, Any] = {}  # per-fault pytest marks (none left)
# Faults where tokens are renewed or refused: their -v output is searched for tokens too.
TOKEN_FAULTS = ("token-expiry-mid-push", "token-revoked-mid-push", "5xx-oauth2-token-x7")


@pytest.fixture(scope="session")
def project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    return build_project(tmp_path_factory.mktemp("fault-matrix") / "template", DVC)


def params(faults: tuple[Fault, ...], marked: bool = True) -> list[Any]:
    return [
        pytest.param(f, id=f.name, marks=MARKS.get(f.name, ()) if marked else ()) for f in faults
    ]


def sdk_for(matrix: Matrix, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The emulator's SDK client; monkeypatch restores the session's CA bundle afterwards."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", matrix.emu.ca_bundle)
    return matrix.sdk()


def check_nothing_lost(matrix: Matrix, sdk: Any, outcome: Outcome) -> None:
    """Healed, a re-run where the command failed (with -v: its log holds no token either); then
    the remote is exactly the project's objects, each holding its md5; `status -c` is in sync; a
    fresh clone has pulled every file byte for byte (for a pull fault, the clone that met it)."""
    project = matrix.project
    repo = matrix.repo if matrix.fault.command == "push" else matrix.pull_clone()
    if outcome.returncode != 0:
        again = matrix.dvc_run(repo, matrix.fault.command, "-v")
        assert again.returncode == 0, again.output[-6000:]
        assert_no_secrets(again.output, matrix.secrets)
    assert_remote_intact(sdk, matrix.folder, project.objects)
    assert dvc_status_in_sync(matrix.dvc, repo, matrix.env, matrix.secrets)
    if matrix.fault.command == "push":
        fresh_pull_matches(matrix.dvc, project, matrix.repo, matrix.tmp / "fresh", matrix.env)
    else:
        for name, data in project.contents.items():
            assert (repo / name).read_bytes() == data, f"{name} differs after the pull"


@pytest.mark.timeout(600)
@pytest.mark.parametrize("fault", params(FAULTS))
def test_fault(
    fault: Fault, project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    matrix = Matrix(fault, project, tmp_path, BIN)
    with matrix.started():
        sdk = sdk_for(matrix, monkeypatch)
        outcome = matrix.run_fault()
        assert outcome.returncode == fault.expect_exit, outcome.output
        assert_clean_message(
            outcome.output, matrix.secrets, expect=fault.expect, max_errors=fault.max_errors
        )
        if fault.command == "push":
            # A push that stopped (or was killed) left only whole, correct objects.
            assert_remote_intact(sdk, matrix.folder, project.objects, complete=fault.transient)
        AFTER.get(fault.name, check_nothing_lost)(matrix, sdk, outcome)


@pytest.mark.timeout(600)
@pytest.mark.parametrize(
    "fault", params(tuple(f for f in FAULTS if f.name in TOKEN_FAULTS), marked=False)
)
def test_fault_with_verbose_shows_no_token(fault: Fault, project: Project, tmp_path: Path) -> None:
    """The same faults with -v: the cause chain goes to the debug log, tokens never."""
    verbose = dataclasses.replace(fault, name=fault.name + "-v")
    matrix = Matrix(verbose, project, tmp_path, BIN)
    with matrix.started():
        outcome = matrix.run_fault("-v")
        assert outcome.returncode == fault.expect_exit, outcome.output[-4000:]
        assert_no_secrets(outcome.output, matrix.secrets)
        assert "DEBUG:" in outcome.output


@pytest.mark.timeout(600)
def test_429_storm_sends_nothing_before_the_wait_it_was_told(
    project: Project, tmp_path: Path
) -> None:
    """Under a rate-limit storm, no request comes back during its token's cooldown."""
    fault = next(f for f in FAULTS if f.name == "429-storm-json")
    fault = dataclasses.replace(
        fault,
        name="429-storm-early",
        emulator_args=(*fault.emulator_args, "--enforce-retry-after"),
        # One request per file, so the storm lasts (packs send these files in a few requests).
        options=(*fault.options, ("pack", "false")),
    )
    matrix = Matrix(fault, project, tmp_path, BIN)
    with matrix.started():
        outcome = matrix.run_fault()
        assert outcome.returncode == 0, outcome.output
        counts = matrix.emu.control("GET", "realism")["counts"]
        assert counts["rate_limited"] >= 5, counts
        assert counts["early_retries"] == 0, counts


def assert_no_wrong_bytes(repo: Path, project: Project) -> None:
    """Every cache file holds the bytes its name says (nothing half-written, nothing foreign),
    and every workspace file that exists holds its own bytes."""
    cache = repo / ".dvc" / "cache" / "files" / "md5"
    for path in cache.rglob("*") if cache.exists() else ():
        if path.is_file():
            rel = str(path.relative_to(cache))
            assert not path.name.endswith(".tmp"), rel
            digest = md5_object(path.read_bytes()).removeprefix("files/md5/")
            assert digest == rel.removesuffix(".dir"), f"{rel} holds other bytes"
    for name, data in project.contents.items():
        if (repo / name).exists():
            assert (repo / name).read_bytes() == data, name


def after_persistent_corruption(matrix: Matrix, sdk: Any, outcome: Outcome) -> None:
    clone = matrix.pull_clone()
    assert "files failed to download" in outcome.output, outcome.output
    assert_no_wrong_bytes(clone, matrix.project)
    check_nothing_lost(matrix, sdk, outcome)


def after_change_in_place(matrix: Matrix, sdk: Any, outcome: Outcome) -> None:
    """The pull names the object and installs nothing wrong; what the message says to do
    (delete it in Dropbox, push again from a cache that has it) repairs the remote."""
    victim = f"{matrix.folder}/{md5_object(matrix.project.contents[CHANGED])}"
    assert victim in outcome.output, outcome.output
    assert "Delete it in Dropbox, then push that object again from a DVC cache" in outcome.output
    clone = matrix.pull_clone()
    assert not (clone / CHANGED).exists()
    assert_no_wrong_bytes(clone, matrix.project)
    listing = next(o for o in matrix.project.objects if o.endswith(".dir"))
    assert "delete that .dir object too" in outcome.output
    sdk.files_delete_v2(victim)
    sdk.files_delete_v2(f"{matrix.folder}/{listing}")
    repush = matrix.dvc_run(matrix.repo, "push")
    assert repush.returncode == 0 and "2 files pushed" in repush.output, repush.output
    check_nothing_lost(matrix, sdk, outcome)


def after_concurrent_pushes(matrix: Matrix, sdk: Any, outcome: Outcome) -> None:
    (other,) = matrix.others
    assert other.returncode == 0, other.output
    assert_clean_message(other.output, matrix.secrets)
    assert dvc_status_in_sync(matrix.dvc, matrix.tmp / "other", matrix.env)
    check_nothing_lost(matrix, sdk, outcome)


def after_storm(matrix: Matrix, sdk: Any, outcome: Outcome) -> None:
    """One line per wait episode, not one per refused request."""
    lines = [line for line in outcome.output.splitlines() if SLOW_DOWN in line]
    refused = matrix.emu.control("GET", "realism")["counts"]["rate_limited"]
    assert 1 <= len(lines) < refused, (len(lines), refused)
    check_nothing_lost(matrix, sdk, outcome)


AFTER: dict[str, Callable[[Matrix, Any, Outcome], None]] = {
    "429-storm-json": after_storm,
    "429-storm-plain-text": after_storm,
    "corrupt-download-persistent": after_persistent_corruption,
    "changed-in-place": after_change_in_place,
    "concurrent-pushes": after_concurrent_pushes,
}
