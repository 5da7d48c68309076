"""Access tokens, refresh tokens, authorization codes and temporary links, in SQLite.

Only SHA-256 digests of secrets are stored, so the database never holds a usable token. With
`--data-dir` the file survives restarts, so refresh tokens stay valid across runs.
"""

from __future__ import annotations

import dataclasses
import hashlib
import secrets
import sqlite3
import threading
import time
from pathlib import Path
from typing import Literal, Optional, Union

CODE_TTL_S = 600  # Dropbox's authorization codes are short-lived and single-use
# Temporary links are collected a day after they expire (until then they answer 410 Gone, not
# 404), and there are never more than MAX_LINKS of them (the oldest go first).
LINK_GRACE_S = 24 * 3600
MAX_LINKS = 10_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS refresh_tokens (
    digest TEXT PRIMARY KEY, app_key TEXT NOT NULL, scopes TEXT NOT NULL,
    account_id TEXT NOT NULL, created REAL NOT NULL, revoked INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS access_tokens (
    digest TEXT PRIMARY KEY, refresh_digest TEXT, app_key TEXT NOT NULL, scopes TEXT NOT NULL,
    account_id TEXT NOT NULL, expires_at REAL NOT NULL, revoked INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS access_by_refresh ON access_tokens (refresh_digest);
CREATE TABLE IF NOT EXISTS auth_codes (
    digest TEXT PRIMARY KEY, app_key TEXT NOT NULL, scopes TEXT NOT NULL,
    account_id TEXT NOT NULL, token_access_type TEXT NOT NULL, code_challenge TEXT,
    code_challenge_method TEXT, redirect_uri TEXT, expires_at REAL NOT NULL,
    used INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS temporary_links (
    link_id TEXT PRIMARY KEY, blob TEXT NOT NULL, name TEXT NOT NULL, expires_at REAL NOT NULL);
"""


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def scope_text(scopes: frozenset[str]) -> str:
    return " ".join(sorted(scopes))


@dataclasses.dataclass(frozen=True)
class AccessToken:
    account_id: str
    app_key: str
    scopes: frozenset[str]
    expires_at: float  # epoch seconds
    refresh_digest: Optional[str]
    digest: str


@dataclasses.dataclass(frozen=True)
class IssuedTokens:
    access_token: str
    expires_at: float
    refresh_token: Optional[str]
    scopes: frozenset[str]
    account_id: str
    app_key: str


@dataclasses.dataclass(frozen=True)
class AuthCode:
    app_key: str
    scopes: frozenset[str]
    account_id: str
    token_access_type: str
    code_challenge: Optional[str]
    code_challenge_method: Optional[str]
    redirect_uri: Optional[str]


class TokenProblem(Exception):
    """Why a token or code was refused; `tag` is the auth error / OAuth error name."""

    def __init__(self, tag: str, description: str = ""):
        super().__init__(description or tag)
        self.tag = tag
        self.description = description


class TokenStore:
    def __init__(self, path: Path):
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(refresh_tokens)")}
        if "pkce" not in columns:
            # Whether the grant used PKCE: refreshing one that did not needs the app secret.
            # Rows from before this column were PKCE-only (the default app had no secret).
            self._db.execute(
                "ALTER TABLE refresh_tokens ADD COLUMN pkce INTEGER NOT NULL DEFAULT 1"
            )
        # Every API request looks its token up; keep the hot path off SQLite.
        self._cache: dict[str, AccessToken] = {}
        self.max_links = MAX_LINKS

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- issuing -------------------------------------------------------------------------------

    def _new_access(
        self,
        app_key: str,
        scopes: frozenset[str],
        account_id: str,
        ttl: float,
        refresh_digest: Optional[str],
    ) -> tuple[str, float]:
        # Real short-lived tokens start with "sl." and are ~140 characters long.
        token = "sl." + secrets.token_urlsafe(105)
        expires_at = time.time() + ttl
        self._db.execute(
            "INSERT INTO access_tokens VALUES (?, ?, ?, ?, ?, ?, 0)",
            (digest(token), refresh_digest, app_key, scope_text(scopes), account_id, expires_at),
        )
        return token, expires_at

    def issue(
        self,
        app_key: str,
        scopes: frozenset[str],
        ttl: float,
        *,
        offline: bool,
        account_id: str,
        pkce: bool = True,
    ) -> IssuedTokens:
        """A new access token (and a refresh token when `offline`; `pkce` says whether the grant
        used PKCE, which decides whether refreshing it needs the app secret)."""
        with self._lock:
            refresh: Optional[str] = None
            refresh_digest: Optional[str] = None
            if offline:
                refresh = secrets.token_urlsafe(48)
                refresh_digest = digest(refresh)
                self._db.execute(
                    "INSERT INTO refresh_tokens"
                    "(digest, app_key, scopes, account_id, created, revoked, pkce)"
                    " VALUES (?, ?, ?, ?, ?, 0, ?)",
                    (
                        refresh_digest,
                        app_key,
                        scope_text(scopes),
                        account_id,
                        time.time(),
                        int(pkce),
                    ),
                )
            access, expires_at = self._new_access(app_key, scopes, account_id, ttl, refresh_digest)
        return IssuedTokens(access, expires_at, refresh, scopes, account_id, app_key)

    def refresh(
        self,
        refresh_token: str,
        app_key: str,
        ttl: float,
        scopes: Optional[frozenset[str]] = None,
        *,
        with_secret: bool = True,
    ) -> IssuedTokens:
        """A new access token for a refresh token, optionally down-scoped. A token granted
        without PKCE needs the app secret (`with_secret`), as on Dropbox."""
        with self._lock:
            row = self._db.execute(
                "SELECT app_key, scopes, account_id, revoked, pkce FROM refresh_tokens "
                "WHERE digest = ?",
                (digest(refresh_token),),
            ).fetchone()
            if row is None or row[3]:
                raise TokenProblem("invalid_grant", "refresh token is invalid or revoked")
            if row[0] != app_key:
                raise TokenProblem("invalid_grant", "refresh token was issued to another app")
            if not row[4] and not with_secret:
                raise TokenProblem(
                    "invalid_client", "client_secret required: this token was granted without PKCE"
                )
            granted = frozenset(row[1].split())
            if scopes is not None:
                if not scopes <= granted:
                    raise TokenProblem("invalid_scope", "requested scope was not granted")
                granted = scopes
            access, expires_at = self._new_access(
                app_key, granted, row[2], ttl, digest(refresh_token)
            )
        return IssuedTokens(access, expires_at, None, granted, row[2], app_key)

    # -- checking ------------------------------------------------------------------------------

    def lookup(self, token: str) -> AccessToken:
        """The live access token, or TokenProblem invalid_access_token / expired_access_token."""
        key = digest(token)
        found = self._cache.get(key)
        if found is None:
            with self._lock:
                row = self._db.execute(
                    "SELECT account_id, app_key, scopes, expires_at, refresh_digest, revoked "
                    "FROM access_tokens WHERE digest = ?",
                    (key,),
                ).fetchone()
            if row is None or row[5]:
                raise TokenProblem("invalid_access_token")
            found = AccessToken(row[0], row[1], frozenset(row[2].split()), row[3], row[4], key)
            self._cache[key] = found
        if time.time() >= found.expires_at:
            raise TokenProblem("expired_access_token")
        return found

    # -- ending --------------------------------------------------------------------------------

    def expire(self, token: str) -> bool:
        key = digest(token)
        with self._lock:
            cur = self._db.execute(
                "UPDATE access_tokens SET expires_at = ? WHERE digest = ?", (time.time() - 1, key)
            )
            self._cache.pop(key, None)
        return cur.rowcount > 0

    def revoke_refresh(self, refresh_token: str) -> bool:
        return self._revoke_refresh_digest(digest(refresh_token))

    def _revoke_refresh_digest(self, refresh_digest: str) -> bool:
        with self._lock:
            cur = self._db.execute(
                "UPDATE refresh_tokens SET revoked = 1 WHERE digest = ?", (refresh_digest,)
            )
            self._db.execute(
                "UPDATE access_tokens SET revoked = 1 WHERE refresh_digest = ?", (refresh_digest,)
            )
            self._cache.clear()
        return cur.rowcount > 0

    def revoke_access(self, token: str) -> None:
        """auth/token/revoke: the token, and if it came from a refresh token, that one too."""
        key = digest(token)
        with self._lock:
            row = self._db.execute(
                "SELECT refresh_digest FROM access_tokens WHERE digest = ?", (key,)
            ).fetchone()
            self._db.execute("UPDATE access_tokens SET revoked = 1 WHERE digest = ?", (key,))
            self._cache.pop(key, None)
        if row is not None and row[0]:
            self._revoke_refresh_digest(row[0])

    # -- authorization codes -------------------------------------------------------------------

    def new_code(self, code: AuthCode) -> str:
        secret = secrets.token_urlsafe(32)
        with self._lock:
            self._db.execute(
                "INSERT INTO auth_codes VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 0)",
                (
                    digest(secret),
                    code.app_key,
                    scope_text(code.scopes),
                    code.account_id,
                    code.token_access_type,
                    code.code_challenge,
                    code.code_challenge_method,
                    code.redirect_uri,
                    time.time() + CODE_TTL_S,
                ),
            )
        return secret

    def use_code(self, secret: str) -> AuthCode:
        """Consume a code (single use); TokenProblem invalid_grant if unknown, used or old."""
        with self._lock:
            key = digest(secret)
            row = self._db.execute(
                "SELECT app_key, scopes, account_id, token_access_type, code_challenge, "
                "code_challenge_method, redirect_uri, expires_at, used "
                "FROM auth_codes WHERE digest = ?",
                (key,),
            ).fetchone()
            if row is None:
                raise TokenProblem("invalid_grant", "code doesn't exist or has expired")
            self._db.execute("UPDATE auth_codes SET used = 1 WHERE digest = ?", (key,))
        if row[8]:
            raise TokenProblem("invalid_grant", "code has already been used")
        if time.time() >= row[7]:
            raise TokenProblem("invalid_grant", "code doesn't exist or has expired")
        return AuthCode(row[0], frozenset(row[1].split()), row[2], row[3], row[4], row[5], row[6])

    # -- temporary links -----------------------------------------------------------------------

    def new_link(self, blob: Path, name: str, ttl: float) -> str:
        link_id = secrets.token_urlsafe(24)
        with self._lock:
            now = time.time()
            self._db.execute(
                "DELETE FROM temporary_links WHERE expires_at < ?", (now - LINK_GRACE_S,)
            )
            self._db.execute(
                "DELETE FROM temporary_links WHERE rowid <= "
                "(SELECT MAX(rowid) FROM temporary_links) - ?",
                (self.max_links - 1,),
            )
            self._db.execute(
                "INSERT INTO temporary_links VALUES (?, ?, ?, ?)",
                (link_id, str(blob), name, now + ttl),
            )
        return link_id

    def link(self, link_id: str) -> Union[tuple[Path, str], Literal[False], None]:
        """(blob, name) for a live link, False for an expired one, None for an unknown one."""
        with self._lock:
            row = self._db.execute(
                "SELECT blob, name, expires_at FROM temporary_links WHERE link_id = ?", (link_id,)
            ).fetchone()
        if row is None:
            return None
        if time.time() >= row[2]:
            return False
        return Path(row[0]), row[1]
