"""The composition root: everything one emulator run is made of, built once by the CLI.

`Runtime` holds the parts (config, registered apps, tokens, faults, stats, write locks, the rate
limiter, the store) and is what the HTTP layer, the control API and the OAuth pages are handed.
Handlers never see it: they get the narrower `handlers.contract.Services`.
"""

from __future__ import annotations

import dataclasses

from dropbox_emulator.config import EmulatorConfig, host_port
from dropbox_emulator.control.faults import Faults
from dropbox_emulator.control.knobs import RateLimiter, Stats, WriteLocks
from dropbox_emulator.control.profile import Cooldowns, Realism
from dropbox_emulator.oauth.apps import Apps
from dropbox_emulator.oauth.tokens import TokenStore
from dropbox_emulator.state.store import Store


@dataclasses.dataclass
class Runtime:
    config: EmulatorConfig
    apps: Apps
    tokens: TokenStore
    faults: Faults
    stats: Stats
    locks: WriteLocks
    limiter: RateLimiter
    store: Store
    realism: Realism
    cooldowns: Cooldowns

    @classmethod
    def open(cls, config: EmulatorConfig) -> Runtime:
        """Open (or create) the state under `config.data_dir`."""
        config.data_dir.mkdir(parents=True, exist_ok=True)
        stats = Stats()
        realism = Realism(config)
        cooldowns = Cooldowns()
        return cls(
            config=config,
            apps=Apps(config.app_keys, config.data_dir / "app-secrets.json"),
            tokens=TokenStore(config.data_dir / "tokens.sqlite3"),
            faults=Faults(),
            stats=stats,
            locks=WriteLocks(config, stats, realism, cooldowns),
            limiter=RateLimiter(config),
            store=Store(config.data_dir, config),
            realism=realism,
            cooldowns=cooldowns,
        )

    @property
    def netloc(self) -> str:
        """host:port clients on this machine use (the port is the bound one once listening)."""
        host = self.config.host
        if host in ("", "0.0.0.0", "::"):
            host = "127.0.0.1"  # listening everywhere; clients on this machine use loopback
        return host_port(host, self.config.port)

    @property
    def url(self) -> str:
        return f"https://{self.netloc}"

    def reset(self) -> None:
        """POST /_emulator/reset: stats, faults, rate-limit state, the seeded choices (they start
        again from the seed) and the files; tokens and the config stay."""
        self.stats.reset()
        self.faults.clear()
        self.limiter.reset()
        self.locks.reset()
        self.cooldowns.reset()
        self.realism.reseed()
        self.store.reset()

    def close(self) -> None:
        self.store.close()
        self.tokens.close()
