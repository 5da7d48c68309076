"""`dvc-dropbox`: authorize, inspect, revoke and export Dropbox credentials for DVC remotes.

DVC 3 has no plugin subcommands, so this is a console script of its own. REMOTE is the name of a
`dropbox://` remote in the DVC repository of the working directory (the default remote when
omitted); outside a repository, pass `--app-key` (or set DROPBOX_APP_KEY).

    dvc-dropbox login [REMOTE] [--redirect [--port N]]  authorize now (the first-use flow)
    dvc-dropbox status [REMOTE]                         account, credential source, expiry
    dvc-dropbox logout [REMOTE]                         revoke at Dropbox, delete stored credentials
    dvc-dropbox export-env [REMOTE]                     print DROPBOX_REFRESH_TOKEN, DROPBOX_APP_KEY
    dvc-dropbox doctor [REMOTE]                         the Dropbox desktop app vs this repository
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
from typing import Any, Optional

from .errors import DropboxAuthError, DropboxConfigError, DropboxRemoteError

logger = logging.getLogger("dvc.dvc_dropbox.cli")


@dataclasses.dataclass
class Remote:
    """What the commands need from a remote's config (no secrets beyond the optional app secret)."""

    name: Optional[str]  # None: no DVC remote (outside a repository, app key given directly)
    url: Optional[str] = None
    app_key: Optional[str] = None
    app_secret: Optional[str] = None
    app_key_from: str = ""


def find_remote(name: Optional[str], app_key: Optional[str]) -> Remote:
    """REMOTE from the DVC config of the working directory (default remote if omitted)."""
    import os

    from dvc.config import Config

    from . import urls
    from .auth.credentials import ENV_APP_KEY

    config = Config.from_cwd(validate=True)
    in_repo = config.dvc_dir is not None
    if name is None:
        name = config.get("core", {}).get("remote")
    if name is None:
        if app_key or os.environ.get(ENV_APP_KEY, "").strip():
            return _with_key(Remote(None), app_key)
        where = "this DVC repository has no default remote" if in_repo else "not in a DVC repo"
        raise DropboxConfigError(
            f"which remote? {where}: name one (`dvc-dropbox login <remote>`), or pass "
            f"--app-key <app key> (or set {ENV_APP_KEY})"
        )
    remotes = config.get("remote", {})
    if name not in remotes:
        known = ", ".join(sorted(remotes)) or "none"
        raise DropboxConfigError(
            f"no remote named '{name}' in the DVC config here (remotes: {known}); see "
            "`dvc remote list`"
        )
    conf = remotes[name]
    url = str(conf.get("url", ""))
    # Exactly what the plugin accepts: any letter case of the scheme, and the same URL checks.
    if not urls.is_dropbox_url(url):
        raise DropboxConfigError(f"remote '{name}' is not a Dropbox remote (its url is {url})")
    problem = urls.url_error(url)
    if problem is not None:
        raise DropboxConfigError(f"remote '{name}': {problem}")
    remote = Remote(name, url=url, app_secret=conf.get("app_secret") or None)
    if conf.get("app_key"):
        remote.app_key = conf["app_key"]
        remote.app_key_from = f"the app_key option of remote '{name}'"
    return _with_key(remote, app_key)


def _with_key(remote: Remote, app_key: Optional[str]) -> Remote:
    import os

    from .auth.credentials import ENV_APP_KEY

    if app_key:
        remote.app_key, remote.app_key_from = app_key, "--app-key"
    elif not remote.app_key and os.environ.get(ENV_APP_KEY, "").strip():
        remote.app_key, remote.app_key_from = os.environ[ENV_APP_KEY].strip(), ENV_APP_KEY
    return remote


def _require_app_key(remote: Remote) -> str:
    from .auth.messages import missing_app_key_message

    if not remote.app_key:
        raise DropboxConfigError(missing_app_key_message(remote.name))
    return remote.app_key


def _env_credentials_set() -> list[str]:
    import os

    from .auth.credentials import TOKEN_VARS

    return [name for name in TOKEN_VARS if os.environ.get(name, "").strip()]


def _client_for(creds: Any, app_secret: Optional[str], source: Any, store: Any) -> Any:
    from .auth.client import client_for

    return client_for(creds, app_secret, source, store, timeout=60, max_connections=2, paced=False)


def _account_line(account: Any) -> str:
    """One line for a `users.FullAccount`."""
    return f"{account.name.display_name} <{account.email}> ({account.account_id})"


def _print(text: str = "") -> None:
    print(text, flush=True)


# -- commands ------------------------------------------------------------------------------------


def cmd_login(args: argparse.Namespace) -> int:
    from .auth import oauth_flow
    from .auth.credentials import CredentialsFile, credentials_path
    from .auth.messages import CredentialSource, no_terminal_message
    from .auth.resolve import save_credentials

    remote = find_remote(args.remote, args.app_key)
    app_key = _require_app_key(remote)
    path = credentials_path()
    if args.redirect:
        creds = oauth_flow.authorize_with_redirect(
            app_key, remote.app_secret, port=args.port, timeout=args.timeout
        )
    else:
        if not oauth_flow.stdin_is_terminal():
            raise DropboxAuthError(no_terminal_message(remote.name, path))
        creds = oauth_flow.authorize_no_redirect(app_key, remote.app_secret)
    store = CredentialsFile(path)
    source = CredentialSource("file", path=path, app_key_from=remote.app_key_from)
    if not save_credentials(store, creds):
        return 1
    try:
        client = _client_for(creds, remote.app_secret, source, store)
        who = _account_line(client.users_get_current_account())
    except Exception as exc:  # the credentials are saved; the greeting is optional
        logger.debug("could not read the account: %s", type(exc).__name__)
        who = creds.account_id or "?"
    _print(f"Authorized Dropbox account {who} for app key {app_key}.")
    _print(f"Credentials saved to {path}")
    env = _env_credentials_set()
    if env:
        _print(
            f"Note: {', '.join(env)} {'is' if len(env) == 1 else 'are'} set; dvc uses the "
            "environment before this file. Unset them to use the saved credentials."
        )
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    show_status(find_remote(args.remote, args.app_key))
    return 0


def show_status(remote: Remote) -> tuple[Any, Any]:
    """Print what `dvc-dropbox status` shows; return the client and the `users.FullAccount`."""
    from . import sdk_internals
    from .auth.credentials import _utc_now, format_expiry, git_ignore_status
    from .auth.resolve import resolve_credentials

    resolved = resolve_credentials(
        remote.app_key,
        remote.app_secret,
        remote_name=remote.name,
        url=remote.url,
        interactive=False,
        app_key_from=remote.app_key_from or None,
    )
    creds, source = resolved.credentials, resolved.source
    if remote.name:
        _print(f"Remote:       {remote.name}" + (f" ({remote.url})" if remote.url else ""))
    if creds.app_key:
        _print(f"App key:      {creds.app_key} (from {source.app_key_from or remote.app_key_from})")
    where = source.describe()
    if source.kind == "file" and source.path is not None:
        ignored = git_ignore_status(source.path)
        if ignored is not None:
            where += " (git-ignored)" if ignored else " (NOT git-ignored: add it to .gitignore!)"
    _print(f"Credentials:  {where}")
    client = _client_for(creds, remote.app_secret, source, resolved.store)
    account = client.users_get_current_account()
    _print(f"Account:      {_account_line(account)}")
    for line in _root_lines(account):
        _print(line)
    expires = sdk_internals.access_token_expiration(client)
    if expires is None:
        _print("Access token: expiry unknown")
    else:
        left = expires - _utc_now()
        minutes = max(0, int(left.total_seconds() // 60))
        _print(
            f"Access token: expires {format_expiry(expires)} "
            f"(in {minutes // 60} h {minutes % 60} min)"
        )
    if creds.refresh_token:
        _print("Refresh:      automatic (a refresh token is stored)")
    else:
        _print("Refresh:      none (no refresh token; the access token cannot be renewed)")
    return client, account


def _root_lines(account: Any) -> list[str]:
    """Where `path_root root` and `home` point: the account's root namespace and home folder."""
    root_info = getattr(account, "root_info", None)
    root = getattr(root_info, "root_namespace_id", None)
    if root is None:
        return []
    home_ns = getattr(root_info, "home_namespace_id", None)
    home_path = getattr(root_info, "home_path", None)  # only a team space's root has it
    if home_path:
        return [
            f"Root:         namespace {root} (team space; path_root root)",
            f"Home:         {home_path} in the team space (namespace {home_ns}; path_root home)",
        ]
    return [f"Root:         namespace {root} (your own Dropbox; home and root are the same)"]


def cmd_doctor(args: argparse.Namespace) -> int:
    from . import doctor
    from .desktop_app import find_desktop_app

    app = find_desktop_app()
    # Without a desktop app nothing about the remote matters: no remote lookup, no network.
    remote = find_remote(args.remote, args.app_key) if app is not None else None
    return doctor.report(app, remote, show_status, out=_print)


def cmd_logout(args: argparse.Namespace) -> int:
    from .auth.credentials import CredentialsFile, credentials_path
    from .auth.messages import CredentialSource

    remote = find_remote(args.remote, args.app_key)
    app_key = _require_app_key(remote)
    path = credentials_path()
    store = CredentialsFile(path)
    creds = store.get(app_key) if path.exists() else None
    env = _env_credentials_set()
    if creds is None:
        _print(f"No stored Dropbox credentials for app key {app_key} in {path}.")
    else:
        source = CredentialSource("file", path=path, app_key_from=remote.app_key_from)
        client = _client_for(creds, remote.app_secret, source, None)
        try:
            client.auth_token_revoke()
            revoked = "Revoked the authorization at Dropbox"
        except DropboxAuthError:
            revoked = "Dropbox had already revoked the authorization"
        with store.locked():
            store.remove(app_key)
        _print(f"{revoked} and removed the credentials for app key {app_key} from {path}.")
    if env:
        _print(
            f"Note: {', '.join(env)} {'is' if len(env) == 1 else 'are'} still set in the "
            f"environment; unset {'it' if len(env) == 1 else 'them'} too."
        )
    return 0


def cmd_export_env(args: argparse.Namespace) -> int:
    from .auth.credentials import ENV_APP_KEY, ENV_REFRESH_TOKEN
    from .auth.messages import helper_args
    from .auth.resolve import resolve_credentials

    remote = find_remote(args.remote, args.app_key)
    _require_app_key(remote)
    resolved = resolve_credentials(
        remote.app_key,
        remote.app_secret,
        remote_name=remote.name,
        url=remote.url,
        app_key_from=remote.app_key_from or None,
    )
    creds = resolved.credentials
    if not creds.refresh_token or not creds.app_key:
        raise DropboxAuthError(
            f"{resolved.source.describe()} holds no refresh token to export; "
            f"run `dvc-dropbox login {helper_args(remote.name)}` first"
        )
    print(
        "WARNING: these values give access to your Dropbox files. Put them only into a secret "
        "store (e.g. your CI's secrets), never into Git, logs or chat.",
        file=sys.stderr,
        flush=True,
    )
    _print(f"{ENV_REFRESH_TOKEN}={creds.refresh_token}")
    _print(f"{ENV_APP_KEY}={creds.app_key}")
    return 0


# -- entry point ---------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    from .auth.oauth_flow import DEFAULT_REDIRECT_PORT, REDIRECT_TIMEOUT_S

    parser = argparse.ArgumentParser(
        prog="dvc-dropbox",
        description="Manage Dropbox credentials for DVC remotes (dropbox://...).",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="show debug messages")
    parser.add_argument("--version", action="version", version=version_text())
    # `-v` after the subcommand too (`dvc-dropbox status -v`), as with `dvc push -v`. SUPPRESS
    # keeps a subcommand that lacks it from resetting a `-v` given before the subcommand.
    verbose = argparse.ArgumentParser(add_help=False)
    verbose.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        default=argparse.SUPPRESS,
        help="show debug messages",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, help_text: str) -> argparse.ArgumentParser:
        cmd = sub.add_parser(name, help=help_text, description=help_text, parents=[verbose])
        cmd.add_argument(
            "remote",
            nargs="?",
            metavar="REMOTE",
            help="DVC remote name (default remote if omitted)",
        )
        cmd.add_argument("--app-key", help="Dropbox app key (default: the remote's app_key)")
        return cmd

    login = add("login", "Authorize Dropbox access now and save the credentials.")
    login.add_argument(
        "--redirect",
        action="store_true",
        help="capture the code through a redirect to 127.0.0.1 instead of pasting it",
    )
    login.add_argument(
        "--port",
        type=int,
        default=DEFAULT_REDIRECT_PORT,
        help=f"port for --redirect (default {DEFAULT_REDIRECT_PORT}; register "
        "http://127.0.0.1:<port>/ as a redirect URI of your Dropbox app)",
    )
    login.add_argument(
        "--timeout",
        type=float,
        default=REDIRECT_TIMEOUT_S,
        help="seconds to wait for the redirect (default %(default)s)",
    )
    login.set_defaults(func=cmd_login)
    add(
        "status", "Show the account, where the credentials come from and when they expire."
    ).set_defaults(func=cmd_status)
    add("logout", "Revoke the stored authorization at Dropbox and delete it.").set_defaults(
        func=cmd_logout
    )
    add(
        "export-env", "Print DROPBOX_REFRESH_TOKEN and DROPBOX_APP_KEY for a CI secret store."
    ).set_defaults(func=cmd_export_env)
    add(
        "doctor",
        "Check whether the Dropbox desktop app on this computer syncs the remote's folder, the "
        "repository or its DVC cache, and say what to do (Selective Sync / Smart Sync).",
    ).set_defaults(func=cmd_doctor)
    return parser


def version_text() -> str:
    """`dvc-dropbox --version`: ours, and the versions a bug report needs next to it."""
    from importlib import metadata

    from . import __version__

    def version(dist: str) -> str:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            return "not installed"

    return (
        f"dvc-dropbox {__version__} (dvc {version('dvc')}, dropbox SDK {version('dropbox')}, "
        f"Python {sys.version.split()[0]})"
    )


class _Formatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return f"{record.levelname}: {record.getMessage()}"


def main(argv: Optional[list[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Formatter())
    log = logging.getLogger("dvc.dvc_dropbox")
    log.addHandler(handler)
    log.setLevel(logging.DEBUG if args.verbose else logging.INFO)
    log.propagate = False
    try:
        return int(args.func(args))
    except DropboxRemoteError as exc:
        print(f"ERROR: {exc}", file=sys.stderr, flush=True)
        return 1
    except KeyboardInterrupt:
        print("\nCancelled; nothing was saved.", file=sys.stderr, flush=True)
        return 130
    except Exception as exc:
        import requests
        from dvc.exceptions import DvcException

        if isinstance(exc, requests.RequestException):
            print(
                f"ERROR: cannot reach Dropbox ({type(exc).__name__}); check the network "
                "connection and try again",
                file=sys.stderr,
                flush=True,
            )
            return 1
        if isinstance(exc, DvcException):  # e.g. a config error from DVC itself
            print(f"ERROR: {exc}", file=sys.stderr, flush=True)
            return 1
        raise


if __name__ == "__main__":
    sys.exit(main())
