"""What dvc-dropbox tells a person about credentials: where they came from, what to do.

No secret is ever part of a message: sources name files and environment variables, never values.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Optional

from .. import sdk_errors
from ..errors import DropboxAuthError
from .credentials import ENV_APP_KEY, ENV_REFRESH_TOKEN, Credentials
from .oauth_flow import SCOPES

logger = logging.getLogger("dvc.dvc_dropbox.auth")

APP_CONSOLE_URL = "https://www.dropbox.com/developers/apps"
ACCOUNT_LOOKUP_TIMEOUT_S = 10.0


@dataclasses.dataclass
class CredentialSource:
    """Where the credentials in use came from, for messages: never holds a secret."""

    kind: str  # "env" | "file"
    path: Optional[Path] = None
    env_vars: tuple[str, ...] = ()
    app_key_from: str = ""  # "the remote's app_key option" / "DROPBOX_APP_KEY"
    remote: Optional[str] = None  # None: no DVC remote known (e.g. `dvc ls-url dropbox://...`)

    def describe(self) -> str:
        if self.kind == "env":
            return "the environment variable" + (
                f" {self.env_vars[0]}"
                if len(self.env_vars) == 1
                else "s " + ", ".join(self.env_vars)
            )
        return f"the credentials file {self.path}"

    def fix(self) -> str:
        if self.kind == "env":
            return (
                f"get new values with `dvc-dropbox login {helper_args(self.remote)}` and "
                f"`dvc-dropbox export-env {helper_args(self.remote)}` on a machine with a "
                "browser, or unset "
                f"{', '.join(self.env_vars)} to use the credentials file instead"
            )
        return f"remove {self.path} and run the command again to re-authorize"


def helper_args(remote: Optional[str]) -> str:
    """How to name the remote to `dvc-dropbox` commands in a message."""
    return remote if remote else "--app-key <app key>"


def missing_app_key_message(remote: Optional[str]) -> str:
    if remote:
        what = f"the Dropbox remote '{remote}' has no app key"
        configure = (
            f"       dvc remote modify {remote} app_key <app key>\n     (or set {ENV_APP_KEY})."
        )
    else:
        what = f"no Dropbox app key is set ({ENV_APP_KEY})"
        configure = (
            f"       export {ENV_APP_KEY}=<app key>\n"
            "     (for a DVC remote: dvc remote modify <remote> app_key <app key>)."
        )
    return (
        f"{what}. dvc-dropbox reaches Dropbox through a Dropbox app of your own, created once "
        "in a minute:\n"
        f"  1. open {APP_CONSOLE_URL} and click 'Create app';\n"
        "  2. choose 'Scoped access' and 'Full Dropbox', and give it any name;\n"
        "  3. on its Permissions tab tick " + ", ".join(SCOPES) + " and click 'Submit'\n"
        "     (no redirect URI and no app secret are needed);\n"
        "  4. copy the 'App key' from its Settings tab and run\n" + configure
    )


def no_terminal_message(remote: Optional[str], path: Path) -> str:
    what = f"Dropbox remote '{remote}' needs" if remote else "Dropbox access needs"
    return (
        f"{what} authorization, but stdin is not a terminal, so dvc-dropbox cannot ask for "
        "it. Authorize in one of three ways:\n"
        "  1. run the command once in an interactive terminal; the credentials are then saved "
        f"to {path} and used from then on;\n"
        f"  2. set {ENV_REFRESH_TOKEN} together with the app key (remote option app_key or "
        f"{ENV_APP_KEY}), e.g. from your CI's secret store;\n"
        f"  3. run `dvc-dropbox login {helper_args(remote)}` on a machine with a browser, then "
        f"`dvc-dropbox export-env {helper_args(remote)}` prints the values for way 2."
    )


def authorized_line(creds: Credentials, path: Path, saved: bool) -> str:
    """The one line after a successful first use: whose account, and where it was kept."""
    who = _account_name(creds)
    if saved:
        return f"Authorized Dropbox account {who}; credentials saved to {path}"
    return f"Authorized Dropbox account {who} for this command only (not saved to {path})"


def _account_name(creds: Credentials) -> str:
    """`Name <email>` of the account just authorized; its id if Dropbox does not say quickly."""
    try:
        import dropbox

        client = dropbox.Dropbox(
            oauth2_access_token=creds.access_token,
            max_retries_on_error=0,
            max_retries_on_rate_limit=0,
            timeout=ACCOUNT_LOOKUP_TIMEOUT_S,
            user_agent="dvc-dropbox",
        )
        account = client.users_get_current_account()
        return f"{account.name.display_name} <{account.email}>"
    except Exception as exc:  # the credentials are saved; naming the account is a courtesy
        logger.debug("could not read the Dropbox account: %s", type(exc).__name__)
        return creds.account_id or "(account id unknown)"


def translate_auth_error(
    exc: Exception, source: CredentialSource, *, refreshing: bool = False
) -> DropboxAuthError:
    """An SDK AuthError/BadInputError -> a message naming the cause, the source and the fix."""
    if source.kind == "env" and ENV_REFRESH_TOKEN not in source.env_vars:
        expired_why = f"there is no {ENV_REFRESH_TOKEN} to renew it"
    else:
        expired_why = "renewing it did not help"
    context = sdk_errors.AuthContext(
        where=source.describe(),
        fix=source.fix(),
        app_key_from=source.app_key_from or "the config",
        expired_why=expired_why,
        console=APP_CONSOLE_URL,
        scopes=", ".join(SCOPES),
    )
    return sdk_errors.auth_error(exc, context, refreshing=refreshing)
