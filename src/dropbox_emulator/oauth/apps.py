"""The registered apps of an emulator run (`--app-key KEY[:SECRET]`): their keys and secrets.

An app without a secret can only authorize with PKCE; the first key is the one the ready line's
env names (`DROPBOX_APP_KEY`) and the control API uses by default.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Iterable
from typing import Optional

from dropbox_emulator.oauth.tokens import TokenProblem


class Apps:
    def __init__(self, entries: Iterable[str]):
        """`entries` as given on the command line: `KEY` or `KEY:SECRET`; repeats are ignored."""
        self.keys: list[str] = []
        self._secrets: dict[str, Optional[str]] = {}
        for entry in entries:
            key, _, secret = entry.partition(":")
            if key and key not in self._secrets:
                self.keys.append(key)
                self._secrets[key] = secret or None

    @property
    def default_key(self) -> str:
        return self.keys[0]

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
