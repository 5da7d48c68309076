"""Settings of one emulator run: the command line's knobs, changeable via POST /_emulator/config."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Optional

DEFAULT_APP_KEY = "emulator-app-key"


@dataclasses.dataclass
class EmulatorConfig:
    data_dir: Path
    host: str = "127.0.0.1"
    port: int = 0
    app_keys: list[str] = dataclasses.field(default_factory=lambda: [DEFAULT_APP_KEY])
    latency_ms: float = 0.0
    commit_ms: float = 0.0
    token_ttl: int = 14400
    auto_approve: bool = False
    quota_bytes: int = 2 * 1024**4  # 2 TiB, like a Dropbox Plus account
    rate_limit_per_s: Optional[float] = None  # per-token request budget; None = unlimited
    # How long a commit waits for the namespace write lock before answering
    # 429 too_many_write_operations; Dropbox's own wait is short and unpublished.
    lock_wait_ms: float = 100.0


def host_port(host: str, port: int) -> str:
    """`host:port`, with brackets around an IPv6 host."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
