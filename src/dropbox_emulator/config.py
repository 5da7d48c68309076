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
    # -- realism (control/profile.py documents each value and its source) --------------------
    profile: Optional[str] = None  # the named profile last applied ("dropbox"), None = fast
    seed: int = 0  # every random choice (forms, waits, shares) is drawn from Random(seed)
    time_scale: float = 1.0  # multiplies every delay added and every wait asked for
    # retry_after (s) drawn for write contention, [low, high]
    contention_retry_after_s: tuple[float, float] = (1.0, 1.0)
    # retry_after (s) floor for too_many_requests, [low, high]; the bucket may ask for more
    too_many_requests_retry_after_s: tuple[float, float] = (1.0, 1.0)
    contention_409_share: float = 0.0  # single-item commits: 409 route error instead of 429
    batch_contention_429_share: float = 0.0  # batch finishes: whole-call 429, not per entry
    namespace_commits_per_s: Optional[float] = None  # per-namespace commit budget
    plain_text_429_share: float = 0.0  # 429s answered with a text/plain body
    job_in_progress_s: tuple[float, float] = (0.0, 0.0)  # async jobs stay in_progress this long
    slow_commit_share: float = 0.0  # commits that take `slow_commit_ms` more
    slow_commit_ms: float = 0.0
    enforce_retry_after: bool = False  # a retry before retry_after has passed fails again
    # Throughput caps (http/bandwidth.py), MiB/s, divided by time_scale; None = none.
    stream_mib_per_s: Optional[float] = None  # each connection's own
    total_mib_per_s: Optional[float] = None  # all connections together
    # How long an upload session lives after its start (Dropbox: 7 days), times time_scale.
    session_lifetime_s: float = 7 * 24 * 3600.0


def host_port(host: str, port: int) -> str:
    """`host:port`, with brackets around an IPv6 host."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
