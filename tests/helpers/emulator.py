"""Run `dropbox-emulator` in its own process, as users and CI do, and talk to its control API."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Optional

import requests

READY_TIMEOUT_S = 60


class EmulatorProcess:
    """One emulator process. `env` is what the SDK (or a `dvc` subprocess) needs to reach it."""

    def __init__(self, *args: str, data_dir: Optional[Path] = None):
        self.args = list(args)
        self.data_dir = data_dir
        self.proc: Optional[subprocess.Popen[str]] = None
        self.ready: dict[str, Any] = {}

    def start(self) -> EmulatorProcess:
        cmd = [sys.executable, "-m", "dropbox_emulator", *self.args]
        if self.data_dir is not None:
            cmd += ["--data-dir", str(self.data_dir)]
        # The emulator must not inherit a CA bundle pointing at another emulator.
        env = {k: v for k, v in os.environ.items() if not k.startswith("DROPBOX_")}
        env.pop("REQUESTS_CA_BUNDLE", None)
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=None, text=True, env=env)
        assert self.proc.stdout is not None
        deadline = time.monotonic() + READY_TIMEOUT_S
        line = ""
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if line or self.proc.poll() is not None:
                break
        if not line:
            self.stop()
            raise RuntimeError(f"emulator did not start (exit code {self.proc.returncode})")
        self.ready = json.loads(line)
        return self

    @property
    def env(self) -> dict[str, str]:
        return dict(self.ready["env"])

    @property
    def url(self) -> str:
        return self.ready["url"]

    @property
    def ca_bundle(self) -> str:
        return self.ready["ca_bundle"]

    def control(self, method: str, path: str, payload: Any = None) -> Any:
        """Call the control API, e.g. control("POST", "tokens", {"ttl": 60})."""
        url = f"{self.ready['control_url']}/{path.lstrip('/')}"
        resp = requests.request(method, url, json=payload, verify=self.ca_bundle, timeout=60)
        resp.raise_for_status()
        return resp.json() if resp.content else None

    def token(self, **kwargs: Any) -> dict[str, Any]:
        return self.control("POST", "tokens", kwargs)

    def stats(self) -> dict[str, Any]:
        return self.control("GET", "stats")

    def stop(self, timeout: float = 20) -> int:
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        return self.proc.returncode

    def __enter__(self) -> EmulatorProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


HOST_VARS = (
    "DROPBOX_API_HOST",
    "DROPBOX_API_CONTENT_HOST",
    "DROPBOX_API_NOTIFY_HOST",
    "DROPBOX_WEB_HOST",
)


def sdk_client(emu: EmulatorProcess, **token_args: Any) -> Any:
    """An unmodified `dropbox.Dropbox` for `emu`, with a token from its control API.

    For an emulator other than the session one (the SDK froze its hosts at import), the
    client's host map is pointed at `emu`; refreshing tokens then needs the session emulator.
    """
    import dropbox

    tok = emu.token(**token_args)
    dbx = dropbox.Dropbox(
        oauth2_access_token=tok["access_token"],
        max_retries_on_rate_limit=0,
        max_retries_on_error=0,
    )
    host = emu.env["DROPBOX_API_HOST"]
    if dbx._host_map[dropbox.dropbox_client.HOST_API] != host:
        for key in list(dbx._host_map):
            dbx._host_map[key] = host
    return dbx
