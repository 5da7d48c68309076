"""The fault matrix (issue 11, item 8): a small project, the faults, the checks every one needs.

Shared by `tests/integration/plugin/test_fault_matrix.py` (which asserts) and
`benchmarks/fault_matrix_table.py` (which runs the same scenarios against any checkout's `.venv`,
the code before issue 11 included, and prints a row per fault). Everything goes through the real
`dvc` in a subprocess against an emulator in its own process; the remote side is inspected with
the official SDK, never through the plugin.

A scenario is a `Fault`: emulator options, remote options, what to arm before the command, what
to do while it runs (kill it, revoke its token, freeze or restart the server), and what to undo
afterwards. `Matrix.run_fault` runs one and returns its `Outcome`; the checks below judge it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import random
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Callable, Optional

from dropbox_emulator.testing import EmulatorServer, isolated_env
from tests.integration.plugin.cli import remote_files

MiB = 1024 * 1024
SMALL_FILES = 30
# Three upload-session chunks at the smallest chunk_size (4 MiB), and a download long enough to
# be cut in the middle.
BIG_SIZE = 9 * MiB + 5
CHUNK_SIZE = "4"
REMOTE = "r"
# One `dvc` command of the matrix may take this long before it counts as hung (and is killed).
COMMAND_TIMEOUT_S = 240.0
# How long a `during` hook waits for the command to reach the moment it acts on.
WATCH_TIMEOUT_S = 120.0

OBJECT_NAME = re.compile(r"files/md5/([0-9a-f]{2})/([0-9a-f]{30})(\.dir)?")
# What must never reach a user's screen: a traceback, DVC's catch-all, an exception's repr (an SDK
# or Python class name followed by its arguments).
FORBIDDEN = ("Traceback", "unexpected error")
REPR = re.compile(r"\b[A-Z][A-Za-z0-9]*(?:Error|Exception|Exc)\(")
# The emulator issues access tokens as Dropbox does, "sl." and ~140 URL-safe characters: any one
# on screen is a leak, also a renewed one the test was never given.
ACCESS_TOKEN = re.compile(r"sl\.[A-Za-z0-9_-]{20,}")


# -- the project --


@dataclasses.dataclass
class Project:
    """A git + DVC repository with tens of small files (`data/`, one `.dir`) and a file of three
    chunks (`big.bin`), committed; copied for every run so no test pays for `dvc init`/`add`."""

    template: Path
    contents: dict[str, bytes]  # workspace path -> bytes

    @property
    def objects(self) -> set[str]:
        """Every remote object a full push leaves: one per file, and the `.dir` listing."""
        names = {md5_object(data) for data in self.contents.values()}
        text = (self.template / "data.dvc").read_text()
        md5 = next(line.split(":", 1)[1].strip() for line in text.splitlines() if "md5:" in line)
        return names | {f"files/md5/{md5[:2]}/{md5[2:]}"}


def md5_object(data: bytes) -> str:
    digest = hashlib.md5(data).hexdigest()
    return f"files/md5/{digest[:2]}/{digest[2:]}"


def run(
    args: list[str], cwd: Path, env: Mapping[str, str], timeout: float = COMMAND_TIMEOUT_S
) -> Any:
    proc = subprocess.run(
        args, cwd=cwd, env=dict(env), capture_output=True, text=True, timeout=timeout
    )
    if proc.returncode != 0:
        raise AssertionError(f"{args} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


def build_project(path: Path, dvc: str, seed: int = 11) -> Project:
    """`git init`, `dvc init`, the data added and committed (no remote yet)."""
    rng = random.Random(seed)
    path.mkdir(parents=True)
    env = isolated_env(path.parent / (path.name + "-home"))
    Path(env["HOME"]).mkdir(exist_ok=True)
    contents = {f"data/f{i:02}.txt": rng.randbytes(200 + 37 * i) for i in range(SMALL_FILES)}
    contents["big.bin"] = rng.randbytes(BIG_SIZE)
    for name, data in contents.items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_bytes(data)
    run(["git", "init", "-q"], path, env)
    run([dvc, "init", "-q"], path, env)
    run([dvc, "add", "-q", "data", "big.bin"], path, env)
    run(["git", "add", "-A"], path, env)
    run(["git", "commit", "-qm", "data"], path, env)
    return Project(path, contents)


def remote_config(url: str, options: Mapping[str, str]) -> str:
    lines = ["[core]", f"    remote = {REMOTE}", f"['remote \"{REMOTE}\"']", f"    url = {url}"]
    lines += [f"    {key} = {value}" for key, value in options.items()]
    return "\n".join(lines) + "\n"


def copy_project(
    project: Project, dest: Path, url: str, options: Mapping[str, str], env: Any
) -> Path:
    """A copy of the project (cache and workspace included) with `url` as its committed default
    remote, so a `git clone` of it is what a teammate gets."""
    shutil.copytree(project.template, dest, symlinks=True)
    (dest / ".dvc" / "config").write_text(remote_config(url, options))
    run(["git", "commit", "-qam", "remote"], dest, env)
    return dest


# -- the checks --


def error_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("ERROR")]


def assert_clean_message(
    output: str,
    secrets: tuple[str, ...] = (),
    *,
    expect: tuple[str, ...] = (),
    max_errors: Optional[int] = None,
) -> list[str]:
    """No traceback, no catch-all, no repr or SDK class name, no token or secret; each of `expect`
    present; at most `max_errors` ERROR lines (one cause, one message). Returns the ERROR lines."""
    for word in FORBIDDEN:
        assert word not in output, f"{word!r} in the output:\n{output[-6000:]}"
    reprs = REPR.findall(output)
    assert not reprs, f"an exception repr {reprs[:3]} in the output:\n{output[-6000:]}"
    assert_no_secrets(output, secrets)
    for needle in expect:
        assert needle in output, f"{needle!r} not in:\n{output[-6000:]}"
    errors = error_lines(output)
    if max_errors is not None:
        assert len(errors) <= max_errors, f"{len(errors)} ERROR lines, one cause:\n" + "\n".join(
            errors[:20]
        )
    return errors


def assert_no_secrets(output: str, secrets: tuple[str, ...]) -> None:
    """None of the known secrets, and no access token at all (a renewed one included)."""
    for secret in secrets:
        assert secret not in output, "a token or secret is in the output"
    leaked = ACCESS_TOKEN.findall(output)
    assert not leaked, f"an access token ({leaked[0][:6]}...) is in the output"


def assert_remote_intact(
    sdk: Any, folder: str, expected: Optional[set[str]] = None, *, complete: bool = True
) -> set[str]:
    """Every remote file is a DVC object whose bytes have the md5 its name says (nothing partial,
    nothing temporary, nothing truncated). With `expected`: the listing is exactly that
    (`complete`) or a part of it (after a push that stopped)."""
    listed = remote_files(sdk, folder)
    for name, metadata in listed.items():
        match = OBJECT_NAME.fullmatch(name)
        assert match, f"{name!r} on the remote is not a DVC object (partial or temporary?)"
        _, response = sdk.files_download(f"{folder}/{name}")
        try:
            digest = hashlib.md5()
            size = 0
            for block in response.iter_content(MiB):
                digest.update(block)
                size += len(block)
        finally:
            response.close()
        assert size == metadata.size, name
        assert digest.hexdigest() == match.group(1) + match.group(2), f"{name} holds other bytes"
    names = set(listed)
    if expected is not None:
        if complete:
            assert names == expected, (sorted(names - expected), sorted(expected - names))
        else:
            assert names <= expected, sorted(names - expected)
    return names


def dvc_status_in_sync(
    dvc: str, repo: Path, env: Mapping[str, str], secrets: tuple[str, ...] = ()
) -> bool:
    """`dvc status -c` finds nothing to push or pull (its -v log holds no token either)."""
    proc = subprocess.run(
        [dvc, "status", "-c", "--json", "-v"],
        cwd=repo,
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT_S,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert_no_secrets(proc.stderr, secrets)
    # With -v, DVC logs to stdout too: the JSON is the line that is an object.
    objects = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    return json.loads(objects[-1] if objects else "{}") == {}


def fresh_pull_matches(
    dvc: str, project: Project, repo: Path, dest: Path, env: Mapping[str, str]
) -> None:
    """`git clone` of `repo` into `dest` and `dvc pull` there: every file byte for byte."""
    run(["git", "clone", "-q", str(repo), str(dest)], dest.parent, env)
    proc = subprocess.run(
        [dvc, "pull"],
        cwd=dest,
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT_S,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for name, data in project.contents.items():
        assert (dest / name).read_bytes() == data, f"{name} differs after a fresh pull"


# -- the faults --


@dataclasses.dataclass
class Outcome:
    returncode: Optional[int]  # None: killed by the test (hung past COMMAND_TIMEOUT_S)
    output: str
    seconds: float


Hook = Callable[["Matrix", "subprocess.Popen[str]"], None]


@dataclasses.dataclass(frozen=True)
class Fault:
    """One row of the matrix. `command` is what meets the fault: "push", or "pull" (in a fresh
    clone, after an unfaulted push). `arm` runs before it (control API calls), `during` while it
    runs, `disarm` after it (so that the checks and a re-run meet a healthy server)."""

    name: str
    command: str = "push"
    emulator_args: tuple[str, ...] = ()
    options: tuple[tuple[str, str], ...] = ()
    faults: tuple[dict[str, Any], ...] = ()
    config: tuple[tuple[str, Any], ...] = ()
    during: Optional[Hook] = None
    arm: Optional[Callable[[Matrix], None]] = None
    disarm: Optional[Callable[[Matrix], None]] = None
    expect_exit: int = 0  # 0, or 1 for "fails, cleanly"
    expect: tuple[str, ...] = ()  # text the output must hold
    max_errors: Optional[int] = None  # ERROR lines allowed (None: any number)
    restart: bool = False  # the emulator needs a data dir, a fixed port and a kept CA

    @property
    def transient(self) -> bool:
        return self.expect_exit == 0


class KnobMissing(Exception):
    """The emulator under test lacks a control knob the scenario needs (old checkouts)."""


class Matrix:
    """One run of one fault: its own emulator, a copy of the project, the real `dvc`."""

    def __init__(self, fault: Fault, project: Project, tmp: Path, bin_dir: Path):
        self.fault = fault
        self.project = project
        self.tmp = tmp
        self.bin_dir = bin_dir
        self.dvc = str(bin_dir / "dvc")
        self.python = str(bin_dir / "python")
        self.folder = f"/fault-matrix/{fault.name}"
        self.emu: EmulatorServer
        self.token: dict[str, Any] = {}
        self.env: dict[str, str] = {}
        self.repo = tmp / "repo"
        self._emulator_args: list[str] = []
        self.others: list[Outcome] = []  # what a second, concurrent command saw

    # -- the server

    def _start_emulator(self) -> EmulatorServer:
        emu = EmulatorServer(
            *self._emulator_args,
            python=self.python,
            echo_stderr=False,
            data_dir=self.tmp / "emulator-data" if self.fault.restart else None,
        )
        return emu.start()

    @contextlib.contextmanager
    def started(self) -> Iterator[Matrix]:
        self._emulator_args = list(self.fault.emulator_args)
        if self.fault.restart:
            self._emulator_args += ["--port", str(_free_port()), "--ca-dir", str(self.tmp / "ca")]
        self.emu = self._start_emulator()
        try:
            self.token = self.emu.token()
            home = self.tmp / "home"
            home.mkdir()
            self.env = self.emu.isolated_env(home, self.token)
            options = {"chunk_size": CHUNK_SIZE, **dict(self.fault.options)}
            copy_project(self.project, self.repo, f"dropbox:/{self.folder}", options, self.env)
            yield self
        finally:
            self.emu.stop()

    def restart_emulator(self) -> None:
        """Stop the server and start it again on the same port, data and CA."""
        self.emu.stop()
        self.emu = self._start_emulator()

    @property
    def secrets(self) -> tuple[str, ...]:
        known = (self.token.get("access_token"), self.token.get("refresh_token"))
        return tuple(s for s in (*known, self.env.get("DROPBOX_APP_SECRET")) if s)

    def sdk(self) -> Any:
        """An SDK client of this emulator (its CA trusted through REQUESTS_CA_BUNDLE)."""
        from tests.helpers.emulator import sdk_client

        os.environ["REQUESTS_CA_BUNDLE"] = self.emu.ca_bundle
        return sdk_client(self.emu, ttl=86400)  # outlives a `--token-ttl 2` of the scenario

    def control(self, method: str, path: str, payload: Any = None) -> Any:
        from dropbox_emulator.testing import ControlError

        try:
            return self.emu.control(method, path, payload)
        except ControlError as exc:
            if exc.response is not None and exc.response.status_code == 400:
                raise KnobMissing(str(exc)) from None
            raise

    def requests(self, route: str) -> int:
        return int(self.emu.stats()["requests"].get(route, 0))

    # -- commands

    def dvc_run(self, cwd: Path, *args: str, during: Optional[Hook] = None) -> Outcome:
        """`dvc ARGS` in `cwd`; `during(self, proc)` runs while it does. Output goes to a file
        (a pipe nobody reads could block it); a command past COMMAND_TIMEOUT_S is killed."""
        started = time.monotonic()
        with tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace") as log:
            proc = subprocess.Popen(
                [self.dvc, *args],
                cwd=cwd,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                text=True,
                start_new_session=True,
            )
            returncode: Optional[int]
            try:
                if during is not None:
                    during(self, proc)
                left = COMMAND_TIMEOUT_S - (time.monotonic() - started)
                try:
                    returncode = proc.wait(max(1.0, left))
                except subprocess.TimeoutExpired:
                    returncode = None
            finally:
                if proc.poll() is None:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(30)
            seconds = time.monotonic() - started
            log.seek(0)
            output = log.read()
        return Outcome(returncode, output, seconds)

    def run_fault(self, *flags: str) -> Outcome:
        """Prepare (a pull meets its fault in a fresh clone), arm, run the command (with
        `flags`, e.g. "-v"), disarm."""
        fault = self.fault
        cwd = self.repo
        if fault.command == "pull":
            pushed = self.dvc_run(self.repo, "push")
            assert pushed.returncode == 0, pushed.output
            cwd = self.tmp / "pull-clone"
            run(["git", "clone", "-q", str(self.repo), str(cwd)], self.tmp, self.env)
        if fault.config:
            self.control("POST", "config", dict(fault.config))
        if fault.faults:
            self.control("POST", "faults", [dict(spec) for spec in fault.faults])
        if fault.arm is not None:
            fault.arm(self)
        try:
            return self.dvc_run(cwd, fault.command, *flags, during=fault.during)
        finally:
            self.heal()

    def heal(self) -> None:
        """Back to a healthy server: faults cleared, knobs undone."""
        with contextlib.suppress(Exception):
            self.emu.clear_faults()
        if self.fault.disarm is not None:
            self.fault.disarm(self)

    def pull_clone(self) -> Path:
        return self.tmp / "pull-clone"


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- hooks while a command runs --


def wait_for(matrix: Matrix, proc: subprocess.Popen[str], condition: Callable[[], bool]) -> bool:
    """Poll `condition` until it holds (True) or the command ended or WATCH_TIMEOUT_S passed."""
    deadline = time.monotonic() + WATCH_TIMEOUT_S
    while time.monotonic() < deadline and proc.poll() is None:
        if condition():
            return True
        time.sleep(0.05)
    return False


def uploads_started(matrix: Matrix, at_least: int) -> Callable[[], bool]:
    return lambda: matrix.requests("files/upload_session/start") >= at_least


def bytes_in(matrix: Matrix, at_least: int) -> Callable[[], bool]:
    base = matrix.emu.stats()["bytes_in"]
    return lambda: matrix.emu.stats()["bytes_in"] - base >= at_least


def kill_midway(matrix: Matrix, proc: subprocess.Popen[str]) -> None:
    """kill -9 of the whole `dvc push` once a few MiB of the big file are up."""
    if wait_for(matrix, proc, bytes_in(matrix, 4 * MiB)):
        os.killpg(proc.pid, signal.SIGKILL)


def revoke_midway(matrix: Matrix, proc: subprocess.Popen[str]) -> None:
    if wait_for(matrix, proc, uploads_started(matrix, 3)):
        matrix.emu.revoke_token(matrix.token["refresh_token"])


def use_the_access_token_as_given(matrix: Matrix) -> None:
    """With its expiry in the environment the access token is used, not renewed at start."""
    matrix.env["DROPBOX_EXPIRES_AT"] = str(matrix.token["expires_at"])


def expire_midway(matrix: Matrix, proc: subprocess.Popen[str]) -> None:
    """The access token in use expires in the middle of the push (401 expired_access_token)."""
    if wait_for(matrix, proc, bytes_in(matrix, 4 * MiB)):
        matrix.emu.expire_token(matrix.token["access_token"])


def freeze_midway(matrix: Matrix, proc: subprocess.Popen[str]) -> None:
    """SIGSTOP the emulator: its sockets still accept (the kernel's backlog), nothing answers.

    Armed by bytes, as kill -9 is: small files go up in packs (a few requests for all of them), so
    a count of upload sessions started can be reached only once the push is nearly done.
    """
    if not wait_for(matrix, proc, bytes_in(matrix, 4 * MiB)):
        return
    os.kill(matrix.emu.pid, signal.SIGSTOP)
    try:
        proc.wait(COMMAND_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        pass
    finally:
        os.kill(matrix.emu.pid, signal.SIGCONT)


def restart_midway(matrix: Matrix, proc: subprocess.Popen[str]) -> None:
    if wait_for(matrix, proc, bytes_in(matrix, 4 * MiB)):  # by bytes: see freeze_midway
        matrix.restart_emulator()


def change_an_object(matrix: Matrix) -> None:
    """Other bytes of the same size under one object's name, written by "another tool"."""
    from dropbox import files

    victim = f"{matrix.folder}/{md5_object(matrix.project.contents[CHANGED])}"
    other = bytes(b ^ 0x5A for b in matrix.project.contents[CHANGED])
    matrix.sdk().files_upload(other, victim, mode=files.WriteMode.overwrite)


def copy_for_a_second_push(matrix: Matrix) -> None:
    shutil.copytree(matrix.repo, matrix.tmp / "other", symlinks=True)


def second_push(matrix: Matrix, proc: subprocess.Popen[str]) -> None:
    """A teammate's `dvc push` of the same objects to the same remote, at the same time."""
    matrix.others.append(matrix.dvc_run(matrix.tmp / "other", "push"))


def corrupt_after_the_listing(matrix: Matrix, proc: subprocess.Popen[str]) -> None:
    """Every download corrupt once the `.dir` listing is in (a corrupt listing ends the pull
    before any file: tests/integration/plugin/test_integrity.py), so files fail one by one."""
    # DVC 3 reads the `.dir` three times before the first file; arm once a file's download came.
    if wait_for(matrix, proc, lambda: matrix.requests("files/download") >= 4):
        matrix.emu.fault(route="files/download", corrupt_body=True, times=1000)


def revive_token(matrix: Matrix) -> None:
    """After a revocation: the user logs in again (a new pair in the environment)."""
    reset_config(latency_ms=0)(matrix)
    matrix.token = matrix.emu.token()
    matrix.env = matrix.emu.isolated_env(Path(matrix.env["HOME"]), matrix.token)


def unfreeze(matrix: Matrix) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(matrix.emu.pid, signal.SIGCONT)
    reset_config(latency_ms=0)(matrix)


def reset_config(**values: Any) -> Callable[[Matrix], None]:
    """Knobs back to healthy values (`rate_limit_per_s=0`: no limit)."""

    def disarm(matrix: Matrix) -> None:
        matrix.control("POST", "config", values)

    return disarm


# -- the matrix --

LOST = {"drop_connection": "after_processing"}
CHANGED = "data/f03.txt"  # the object "another tool" overwrites
SLOW_DOWN = "Dropbox asked to slow down"
SERVER_ERROR = "Dropbox request failed"
# A burst on a route the command calls once (start-up checks, the `.dir` listing): one more
# error in a row than the retry budget before issue 11 (6 tries) survived. Concurrent routes get
# tens (they spread over the calls in flight).
SERIAL_BURST = 7
# One cause, one message: the cause with its fix, and at most DVC's own summary line after it.
ONE_CAUSE_LINES = 2
PARALLEL_BURST = 30


def burst(route: str, times: int, status: int = 503, command: str = "push") -> Fault:
    name = "5xx-" + route.replace("/", "-").replace("_", "-") + f"-x{times}"
    return Fault(
        name,
        command=command,
        faults=({"route": route, "status": status, "times": times},),
        expect=(SERVER_ERROR,),
    )


def burst_midway(
    route: str,
    times: int,
    command: str = "push",
    serial: int = 1,
    options: tuple[tuple[str, str], ...] = (),
) -> Fault:
    """Tens of errors on a route the command calls many times at once, armed once the `serial`
    calls that go alone (DVC's first object; for a pull, the `.dir` listing) are
    answered, so the burst meets the parallel phase (8 jobs, 100 ms latency: it lasts)."""

    def arm_midway(matrix: Matrix, proc: subprocess.Popen[str]) -> None:
        if wait_for(matrix, proc, lambda: matrix.requests(route) > serial):
            matrix.emu.fault(route=route, status=503, times=times)

    name = "5xx-" + route.replace("/", "-").replace("_", "-") + f"-x{times}"
    return Fault(
        name,
        command=command,
        emulator_args=("--latency-ms", "100"),
        options=(("jobs", "8"), *options),
        during=arm_midway,
        disarm=reset_config(latency_ms=0),
        expect=(SERVER_ERROR,),
    )


def lost(route: str, times: int = 1, command: str = "push") -> Fault:
    name = "lost-" + route.replace("/", "-").replace("_", "-")
    return Fault(name, command=command, faults=({"route": route, "times": times, **LOST},))


FAULTS: tuple[Fault, ...] = (
    Fault(
        "429-storm-json",
        emulator_args=("--rate-limit-per-s", "6"),
        disarm=reset_config(rate_limit_per_s=0),
        expect=(SLOW_DOWN,),
    ),
    Fault(
        "429-storm-plain-text",
        emulator_args=("--rate-limit-per-s", "6", "--plain-text-429-share", "1"),
        disarm=reset_config(rate_limit_per_s=0),
        expect=(SLOW_DOWN,),
    ),
    Fault(
        "contention-per-call",
        faults=(
            {
                "route": "files/upload_session/finish_batch_v2",
                "status": 429,
                "reason": "too_many_write_operations",
                "retry_after": 1,
                "times": 4,
            },
        ),
        expect=(SLOW_DOWN,),
    ),
    Fault(
        "contention-per-call-single-commits",
        options=(("batch_size", "1"),),
        faults=(
            {
                "route": "files/upload_session/finish",
                "status": 429,
                "reason": "too_many_write_operations",
                "retry_after": 1,
                "times": 12,
            },
        ),
        expect=(SLOW_DOWN,),
    ),
    # From the start: the first batch holds every small file (batches fill), so ten of its
    # entries fail and are committed again together. (Armed later, all ten failures would hit
    # the `.dir` object's lone commit one after another: ~150 s of growing backoff.)
    Fault(
        "contention-per-entry",
        faults=(
            {
                "route": "files/upload_session/finish_batch_v2",
                "entry_failure": "too_many_write_operations",
                "times": 10,
            },
        ),
    ),
    burst("oauth2/token", SERIAL_BURST),
    burst("check/user", SERIAL_BURST),
    burst("files/get_metadata", SERIAL_BURST),
    burst("files/list_folder", SERIAL_BURST),
    burst("files/upload_session/start", SERIAL_BURST),
    # Small files go up in packs by default (3 requests for these files): the parallel
    # per-file phase is `pack false`'s (and the large files').
    burst_midway("files/upload_session/start", PARALLEL_BURST, options=(("pack", "false"),)),
    burst("files/upload_session/start_batch", SERIAL_BURST),
    burst("files/upload_session/append_batch", SERIAL_BURST),
    burst("files/upload_session/append_v2", SERIAL_BURST, status=500),
    burst("files/upload_session/finish_batch_v2", SERIAL_BURST),
    burst("files/download", SERIAL_BURST, command="pull"),
    # DVC 3 downloads the `.dir` listing three times, one after another, before the files.
    burst_midway("files/download", PARALLEL_BURST, command="pull", serial=3),
    Fault(
        "drop-mid-upload",
        faults=(
            {
                "route": "files/upload_session/append_v2",
                "drop_connection": True,
                "after_bytes": MiB,
                "times": 2,
            },
            {
                "route": "files/upload_session/start",
                "drop_connection": True,
                "after_bytes": 100,
                "times": 5,
            },
        ),
    ),
    Fault(
        "drop-mid-download",
        command="pull",
        faults=(
            {"route": "files/download", "drop_connection": True, "after_bytes": MiB, "times": 3},
        ),
    ),
    lost("files/upload_session/start", times=3),
    lost("files/upload_session/append_v2"),
    lost("files/upload_session/append_batch"),
    lost("files/upload_session/finish_batch_v2"),
    lost("files/download", times=3, command="pull"),
    lost("oauth2/token"),
    Fault(
        "corrupt-download",
        command="pull",
        faults=({"route": "files/download", "corrupt_body": True, "times": 3},),
        expect=("downloading it again",),
    ),
    Fault(
        "token-expiry-mid-push",
        emulator_args=("--latency-ms", "40"),
        arm=use_the_access_token_as_given,
        during=expire_midway,
        disarm=reset_config(latency_ms=0),
    ),
    Fault(
        "token-revoked-mid-push",
        emulator_args=("--latency-ms", "40"),
        # Cut after a few of the per-file uploads: packs would send them all in one request.
        options=(("pack", "false"),),
        during=revoke_midway,
        disarm=revive_token,
        expect_exit=1,
        expect=("Dropbox rejected the",),
        max_errors=ONE_CAUSE_LINES,
    ),
    Fault(
        "kill-9-mid-push",
        emulator_args=("--latency-ms", "40"),
        during=kill_midway,
        disarm=reset_config(latency_ms=0),
        expect_exit=-9,
    ),
    Fault(
        "quota-full",
        emulator_args=("--quota-bytes", "8000"),  # a third of the small files fit
        disarm=lambda m: m.control("POST", "config", {"quota_bytes": 1 << 40}),
        expect_exit=1,
        expect=("not enough space left in the account",),
        max_errors=ONE_CAUSE_LINES,
    ),
    Fault(
        "frozen-server",
        emulator_args=("--latency-ms", "40"),
        options=(("timeout", "3"), ("connect_timeout", "2")),
        during=freeze_midway,
        disarm=unfreeze,
        expect_exit=1,
        expect=("timed out",),
        max_errors=ONE_CAUSE_LINES,  # the transfer stops at the first file that timed out
    ),
    Fault(
        "restarted-server",
        emulator_args=("--latency-ms", "40"),
        restart=True,
        during=restart_midway,
        disarm=reset_config(latency_ms=0),
    ),
    Fault(
        "corrupt-download-persistent",
        command="pull",
        # Slow enough (31 files, 2 at a time, 100 ms each) that the corruption is armed while most
        # files are still to come, whatever the machine's load (armed once the listing is in).
        emulator_args=("--latency-ms", "100"),
        options=(("jobs", "2"),),
        during=corrupt_after_the_listing,
        expect_exit=1,
        expect=("is corrupt",),
    ),
    Fault(
        "changed-in-place",
        command="pull",
        arm=change_an_object,
        expect_exit=1,
        expect=("does not hold the DVC object its name says", "failed to download"),
    ),
    Fault(
        "concurrent-pushes",
        emulator_args=("--commit-ms", "30"),
        arm=copy_for_a_second_push,
        during=second_push,
    ),
)
