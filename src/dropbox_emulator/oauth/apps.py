"""The registered apps of an emulator run (`--app-key KEY[:SECRET]`): their keys and secrets.

Every Dropbox app has a secret, so every app here has one too: a key given without one gets a
generated secret (15 lower-case letters and digits, the shape of Dropbox's), kept in
`app-secrets.json` in the data dir so a restart with `--data-dir` keeps it. Clients may still
authorize with PKCE and then need no secret. The first key is the one the ready line's env
names (`DROPBOX_APP_KEY`, with `DROPBOX_APP_SECRET`) and the control API uses by default.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import os
import secrets
import string
from collections.abc import Iterable
from pathlib import Path
from typing import Optional

from dropbox_emulator.oauth.tokens import TokenProblem

_SECRET_ALPHABET = string.ascii_lowercase + string.digits


def _generated_secrets(path: Optional[Path]) -> dict[str, str]:
    if path is None:
        return {}
    try:
        loaded = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(loaded, dict):
        return {}
    return {k: v for k, v in loaded.items() if isinstance(k, str) and isinstance(v, str) and v}


class Apps:
    def __init__(self, entries: Iterable[str], secrets_file: Optional[Path] = None):
        """`entries` as given on the command line: `KEY` or `KEY:SECRET`; repeats are ignored.
        Keys without a secret get a generated one, remembered in `secrets_file`."""
        self.keys: list[str] = []
        self._secrets: dict[str, str] = {}
        generated = _generated_secrets(secrets_file)
        changed = False
        for entry in entries:
            key, _, secret = entry.partition(":")
            if not key or key in self._secrets:
                continue
            if not secret:
                secret = generated.get(key) or ""
                if not secret:
                    secret = "".join(secrets.choice(_SECRET_ALPHABET) for _ in range(15))
                    generated[key] = secret
                    changed = True
            self.keys.append(key)
            self._secrets[key] = secret
        if changed and secrets_file is not None:
            tmp = secrets_file.with_name(secrets_file.name + ".tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as out:
                json.dump(generated, out)
            os.replace(tmp, secrets_file)

    @property
    def default_key(self) -> str:
        return self.keys[0]

    @property
    def default_secret(self) -> str:
        return self._secrets[self.keys[0]]

    def __contains__(self, app_key: object) -> bool:
        return app_key in self._secrets

    def has_secret(self, app_key: str) -> bool:
        return bool(self._secrets.get(app_key))

    def check_basic(self, credential: str) -> Optional[str]:
        """The app key of a valid `Basic base64(key:secret)` credential, else None."""
        try:
            decoded = base64.b64decode(credential, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            return None
        key, _, secret = decoded.partition(":")
        registered = self._secrets.get(key)
        if key in self._secrets and registered and hmac.compare_digest(registered, secret):
            return key
        return None

    def check_secret(self, app_key: str, secret: Optional[str]) -> bool:
        """Whether a secret was given and is right; an unknown app or wrong secret raises
        TokenProblem invalid_client."""
        if app_key not in self._secrets:
            raise TokenProblem("invalid_client", "Invalid client_id or client_secret")
        if secret is None:
            return False
        registered = self._secrets[app_key]
        if not registered or not hmac.compare_digest(registered, secret):
            raise TokenProblem("invalid_client", "Invalid client_id or client_secret")
        return True
