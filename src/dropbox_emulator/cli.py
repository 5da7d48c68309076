"""`dropbox-emulator`: run the emulator until SIGTERM/SIGINT.

When it is ready it prints exactly one line of JSON on stdout (url, control_url, ca_bundle and
the env the SDK needs); everything else goes to stderr.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import json
import os
import shutil
import signal
import sys
import tempfile
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Optional

from dropbox_emulator import __version__
from dropbox_emulator.config import DEFAULT_APP_KEY, EmulatorConfig, host_port
from dropbox_emulator.control.profile import (
    PROFILES,
    RANGES,
    SHARES,
    SOURCES,
    ProfileError,
    apply_profile,
    parse_range,
)

if TYPE_CHECKING:
    from dropbox_emulator.http.server import Server
    from dropbox_emulator.runtime import Runtime

EXTRA_MODULES = ("cryptography", "certifi")  # what `pip install dvc-dropbox[emulator]` adds
HOST_VARIABLES = (
    "DROPBOX_API_HOST",
    "DROPBOX_API_CONTENT_HOST",
    "DROPBOX_API_NOTIFY_HOST",
    "DROPBOX_WEB_HOST",
)


def _non_negative(kind: Callable[[str], float]) -> Callable[[str], float]:
    def parse(text: str) -> float:
        value = kind(text)
        if value < 0:
            raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
        return value

    parse.__name__ = getattr(kind, "__name__", "number")
    return parse


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dropbox-emulator",
        description="A local HTTPS Dropbox API v2 server for the unmodified `dropbox` SDK.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port, 0 picks a free one (0)")
    parser.add_argument(
        "--data-dir",
        type=Path,
        help="keep state here across restarts (default: a temporary directory removed at exit)",
    )
    parser.add_argument("--env-file", type=Path, help="also write the env as KEY=VALUE lines here")
    parser.add_argument(
        "--ca-dir",
        type=Path,
        help="keep the CA here and reuse it, so several emulators (or restarts) share one "
        "CA bundle (default: a fresh CA per run)",
    )
    parser.add_argument(
        "--app-key",
        action="append",
        dest="app_keys",
        metavar="KEY[:SECRET]",
        help=f"a registered app key, optionally with its secret; repeatable ({DEFAULT_APP_KEY})",
    )
    parser.add_argument(
        "--latency-ms", type=_non_negative(float), default=None, help="added to every request (0)"
    )
    parser.add_argument(
        "--commit-ms",
        type=_non_negative(float),
        default=None,
        help="how long every commit holds its namespace's write lock (0)",
    )
    parser.add_argument(
        "--lock-wait-ms",
        type=_non_negative(float),
        default=None,
        help="how long a commit waits for the lock before 429 too_many_write_operations (100)",
    )
    parser.add_argument(
        "--token-ttl",
        type=_non_negative(int),
        default=14400,
        help="access token lifetime in seconds (14400)",
    )
    parser.add_argument(
        "--auto-approve",
        action="store_true",
        help="GET /oauth2/authorize answers as if the user pressed Allow",
    )
    parser.add_argument("--quota-bytes", type=_non_negative(int), help="storage quota (2 TiB)")
    parser.add_argument(
        "--rate-limit-per-s",
        type=_non_negative(float),
        help="per-token request budget (429 too_many_requests); default unlimited",
    )
    realism = parser.add_argument_group(
        "realism", "how harsh the emulator is (README: Dropbox realism profile)"
    )
    realism.add_argument(
        "--profile",
        choices=sorted(PROFILES),
        help="set every realism value to what Dropbox shows; the flags below override single ones",
    )
    realism.add_argument(
        "--time-scale",
        type=_positive,
        help="multiply every delay added and every wait asked for (1; e.g. 0.01 for tests)",
    )
    realism.add_argument("--seed", type=int, help="seed of every random choice (0)")
    for name in RANGES:
        realism.add_argument(
            "--" + name.replace("_", "-"),
            metavar="LOW-HIGH",
            help=f"seconds, drawn between LOW and HIGH (or N); {SOURCES[name]}",
        )
    for name in SHARES:
        realism.add_argument(
            "--" + name.replace("_", "-"),
            type=_non_negative(float),
            metavar="0..1",
            help=f"share of the cases; {SOURCES[name]}",
        )
    realism.add_argument(
        "--namespace-commits-per-s",
        type=_non_negative(float),
        help="per-namespace commit budget (too_many_write_operations); default unlimited",
    )
    realism.add_argument(
        "--slow-commit-ms", type=_non_negative(float), help="what a slow commit adds"
    )
    realism.add_argument(
        "--stream-mib-per-s",
        type=_non_negative(float),
        metavar="MIB",
        help="throughput cap of each connection, bodies both ways, divided by --time-scale; "
        "default none (profile: 12, an estimate: README)",
    )
    realism.add_argument(
        "--total-mib-per-s",
        type=_non_negative(float),
        metavar="MIB",
        help="throughput cap of all connections together, divided by --time-scale; default none",
    )
    realism.add_argument(
        "--session-lifetime-s",
        type=_non_negative(float),
        metavar="S",
        help="upload sessions answer not_found this long after their start, times "
        "--time-scale (604800: Dropbox's 7 days)",
    )
    realism.add_argument(
        "--enforce-retry-after",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="refuse a retry that comes before the retry_after it was told (profile: on)",
    )
    parser.add_argument(
        "--verbose",
        action="store_true",
        help="log every request line to stderr, with a UTC timestamp (never headers or bodies)",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return parser


def _positive(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def make_config(args: argparse.Namespace, data_dir: Path) -> EmulatorConfig:
    """The config: defaults, then `--profile`, then every flag given (they override it)."""
    config = EmulatorConfig(
        data_dir=data_dir,
        host=args.host,
        port=args.port,
        app_keys=list(args.app_keys or [DEFAULT_APP_KEY]),
        token_ttl=args.token_ttl,
        auto_approve=args.auto_approve,
    )
    if args.profile is not None:
        apply_profile(config, args.profile)
    for name in (
        "latency_ms",
        "commit_ms",
        "quota_bytes",
        "lock_wait_ms",
        "time_scale",
        "seed",
        "slow_commit_ms",
        "enforce_retry_after",
        "session_lifetime_s",
        *SHARES,
    ):
        value = getattr(args, name)
        if value is not None:
            if name in SHARES and value > 1:
                raise Refusal(f"--{name.replace('_', '-')} is a share: give a number from 0 to 1")
            setattr(config, name, value)
    for name in (
        "rate_limit_per_s",
        "namespace_commits_per_s",
        "stream_mib_per_s",
        "total_mib_per_s",
    ):
        value = getattr(args, name)
        if value is not None:
            setattr(config, name, value or None)  # 0 = unlimited
    for name in RANGES:
        value = getattr(args, name)
        if value is not None:
            try:
                setattr(config, name, parse_range(value, name))
            except ProfileError as exc:
                raise Refusal(f"--{name.replace('_', '-')}: {exc}") from None
    return config


def ready_info(runtime: Runtime, server: Server) -> dict[str, Any]:
    """The ready line: where the emulator is and the env the SDK (and tests) need to reach it."""
    control_url = f"{runtime.url}/_emulator"
    env = dict.fromkeys(HOST_VARIABLES, runtime.netloc)
    env.update(
        REQUESTS_CA_BUNDLE=str(server.tls.ca_bundle),
        DROPBOX_APP_KEY=runtime.apps.default_key,
        DROPBOX_APP_SECRET=runtime.apps.default_secret,
        DROPBOX_EMULATOR_CONTROL_URL=control_url,
    )
    return {
        "url": runtime.url,
        "control_url": control_url,
        "ca_bundle": str(server.tls.ca_bundle),
        "env": env,
    }


def write_env_file(path: Path, env: dict[str, str]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(f"{key}={value}\n" for key, value in env.items()))
    os.replace(tmp, path)


class Refusal(Exception):
    """Why the emulator cannot run, in words for the person who started it: what is wrong,
    then what to do, one line each."""

    def __init__(self, *lines: str):
        super().__init__("\n".join(lines))
        self.lines = lines


def main(argv: Optional[list[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    temporary = args.data_dir is None
    data_dir = Path(tempfile.mkdtemp(prefix="dropbox-emulator-")) if temporary else args.data_dir
    stop = threading.Event()

    def request_stop(signum: int, frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    runtime: Optional[Runtime] = None
    server: Optional[Server] = None
    try:
        # Imported here so `--help` stays fast, and so a missing extra is a sentence.
        try:
            from dropbox_emulator.http import certs
            from dropbox_emulator.http.server import Server
            from dropbox_emulator.runtime import Runtime
        except ImportError as exc:
            raise _missing_extra(exc) from None
        data_dir.mkdir(parents=True, exist_ok=True)
        config = make_config(args, data_dir.resolve())
        tls = certs.generate(
            config.data_dir / "tls", hosts=_cert_hosts(config.host), ca_dir=args.ca_dir
        )
        runtime = Runtime.open(config)
        server = _listen(config, lambda: Server(runtime, tls, verbose=args.verbose))
        thread = server.serve_in_thread()
        info = ready_info(runtime, server)
        if args.env_file is not None:
            write_env_file(args.env_file, info["env"])
        sys.stdout.write(json.dumps(info) + "\n")
        sys.stdout.flush()
        while not stop.wait(1.0):
            if not thread.is_alive():
                sys.stderr.write("dropbox-emulator: server thread died\n")
                return 1
        server.shutdown()
        thread.join(10)
        return 0
    except Refusal as refusal:
        sys.stderr.write("".join(f"dropbox-emulator: {line}\n" for line in refusal.lines))
        return 1
    except OSError as exc:
        sys.stderr.write(f"dropbox-emulator: {exc}\n")
        return 1
    finally:
        if server is not None:
            server.server_close()
        if runtime is not None:
            runtime.close()
        if temporary:
            shutil.rmtree(data_dir, ignore_errors=True)


def _missing_extra(exc: ImportError) -> Exception:
    """A Refusal naming the missing package of the `emulator` extra, else `exc` itself."""
    for name in EXTRA_MODULES:
        try:
            importlib.import_module(name)
        except ImportError:
            return Refusal(
                f"the {name!r} package is missing or broken; the emulator needs it",
                "install the emulator extra: pip install 'dvc-dropbox[emulator]'",
            )
    return exc


def _listen(config: EmulatorConfig, start: Callable[[], Server]) -> Server:
    address = host_port(config.host, config.port)
    try:
        return start()
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise Refusal(
                f"cannot listen on {address}: address already in use (another program holds it)",
                "choose another --port, or --port 0 to pick a free one",
            ) from None
        raise Refusal(f"cannot listen on {address}: {exc.strerror or exc}") from None


def _cert_hosts(host: str) -> tuple[str, ...]:
    hosts = ["127.0.0.1", "localhost", "::1"]
    if host not in hosts and host not in ("0.0.0.0", "::"):
        hosts.insert(0, host)
    return tuple(hosts)
