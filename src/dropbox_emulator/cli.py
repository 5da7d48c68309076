"""`dropbox-emulator`: run the emulator until SIGTERM/SIGINT.

When it is ready it prints exactly one line of JSON on stdout (url, control_url, ca_bundle and
the env the SDK needs); everything else goes to stderr.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any, Optional

from dropbox_emulator import __version__
from dropbox_emulator.config import DEFAULT_APP_KEY, EmulatorConfig


def _non_negative(kind: type) -> Any:
    def parse(text: str) -> Any:
        value = kind(text)
        if value < 0:
            raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
        return value

    parse.__name__ = kind.__name__
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
        "--latency-ms", type=_non_negative(float), default=0.0, help="added to every request"
    )
    parser.add_argument(
        "--commit-ms",
        type=_non_negative(float),
        default=0.0,
        help="how long every commit holds its namespace's write lock",
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
    parser.add_argument("--verbose", action="store_true", help="log every request to stderr")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return parser


def make_config(args: argparse.Namespace, data_dir: Path) -> EmulatorConfig:
    config = EmulatorConfig(
        data_dir=data_dir,
        host=args.host,
        port=args.port,
        app_keys=list(args.app_keys or [DEFAULT_APP_KEY]),
        latency_ms=args.latency_ms,
        commit_ms=args.commit_ms,
        token_ttl=args.token_ttl,
        auto_approve=args.auto_approve,
        rate_limit_per_s=args.rate_limit_per_s or None,
    )
    if args.quota_bytes is not None:
        config.quota_bytes = args.quota_bytes
    if args.lock_wait_ms is not None:
        config.lock_wait_ms = args.lock_wait_ms
    return config


def write_env_file(path: Path, env: dict[str, str]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(f"{key}={value}\n" for key, value in env.items()))
    os.replace(tmp, path)


def main(argv: Optional[list[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    # Imported here so `--help` stays fast.
    from dropbox_emulator import certs, server

    temporary = args.data_dir is None
    data_dir = Path(tempfile.mkdtemp(prefix="dropbox-emulator-")) if temporary else args.data_dir
    stop = threading.Event()

    def request_stop(signum: int, frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    emulator = None
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        config = make_config(args, data_dir.resolve())
        tls = certs.generate(
            config.data_dir / "tls", hosts=_cert_hosts(config.host), ca_dir=args.ca_dir
        )
        emulator = server.Emulator(config, tls, verbose=args.verbose)
        thread = server.serve_in_thread(emulator)
        info = server.ready_info(emulator)
        if args.env_file is not None:
            write_env_file(args.env_file, info["env"])
        sys.stdout.write(server.ready_line(emulator) + "\n")
        sys.stdout.flush()
        while not stop.wait(1.0):
            if not thread.is_alive():
                sys.stderr.write("dropbox-emulator: server thread died\n")
                return 1
        emulator.shutdown()
        thread.join(10)
        return 0
    except OSError as exc:
        sys.stderr.write(f"dropbox-emulator: {exc}\n")
        return 1
    finally:
        if emulator is not None:
            emulator.close()
        if temporary:
            shutil.rmtree(data_dir, ignore_errors=True)


def _cert_hosts(host: str) -> tuple[str, ...]:
    hosts = ["127.0.0.1", "localhost", "::1"]
    if host not in hosts and host not in ("0.0.0.0", "::"):
        hosts.insert(0, host)
    return tuple(hosts)
