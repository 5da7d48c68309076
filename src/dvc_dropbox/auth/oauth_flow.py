"""Interactive authorization: OAuth 2 code flow with PKCE (no app secret), as the guide shows it.

Two variants:
- no-redirect (default, works over SSH): print the link, the user approves in any browser and pastes
  the code that Dropbox shows;
- loopback redirect (`dvc-dropbox login --redirect`): Dropbox redirects the browser to a one-shot
  HTTP server on 127.0.0.1, so the code is captured without copy-paste.

DVC runs transfers in many threads; `FLOW_LOCK` makes sure a process asks at most once at a time,
and callers re-check the credentials file after taking it (another thread may have just finished).
A process asks at most once in all: after a cancel or a failure, later calls fail at once.
While the link is shown and the code read, `terminal.Terminal` keeps DVC's progress bars away.
"""

from __future__ import annotations

import http.server
import sys
import threading
import time
import urllib.parse
from typing import Any, Optional, TextIO

from ..errors import DropboxAuthError
from .credentials import Credentials
from .terminal import Terminal

# What the plugin needs (dropbox-api.md §5.5). files.metadata.write is requested because
# folder creation/moves need it on some account types and Dropbox recommends it with content.write.
SCOPES = (
    "account_info.read",
    "files.metadata.read",
    "files.metadata.write",
    "files.content.read",
    "files.content.write",
)
CODE_ATTEMPTS = 3
DEFAULT_REDIRECT_PORT = 53690
REDIRECT_TIMEOUT_S = 300.0
HTTP_TIMEOUT_S = 60.0

FLOW_LOCK = threading.RLock()


def stdin_is_terminal(stdin: Optional[TextIO] = None) -> bool:
    stream = sys.stdin if stdin is None else stdin
    try:
        return stream is not None and stream.isatty()
    except (AttributeError, ValueError):  # closed or replaced by something without isatty
        return False


def _result_to_credentials(app_key: str, result: Any) -> Credentials:
    if not getattr(result, "refresh_token", ""):
        raise DropboxAuthError(
            "Dropbox did not issue a refresh token (the app may not allow offline access); "
            "check the app's settings in the Dropbox App Console and authorize again"
        )
    return Credentials(
        app_key=app_key,
        refresh_token=result.refresh_token,
        access_token=result.access_token,
        expires_at=result.expires_at,
        account_id=result.account_id,
        scope=result.scope,
    )


def show_link(terminal: Terminal, url: str) -> None:
    terminal.write(f"\nGo to the following link in your browser:\n\n    {url}\n\n")


def _cancelled(what: str) -> DropboxAuthError:
    return DropboxAuthError(
        f"Dropbox authorization cancelled ({what}); nothing was saved. "
        "Run the command again to authorize."
    )


# Why the one interactive authorization of this process ended without credentials. DVC retries a
# failed filesystem per stage, per remote and per thread (a pull with two import-url stages built
# it 4 to 7 times); after a cancel or a failure each of those gets this answer instead of a link.
_ended: Optional[str] = None


def ended() -> Optional[DropboxAuthError]:
    """The error that ended this process's authorization, if it ended without credentials."""
    with FLOW_LOCK:
        return DropboxAuthError(_ended) if _ended is not None else None


def authorize_no_redirect(
    app_key: str,
    app_secret: Optional[str] = None,
    *,
    stdin: Optional[TextIO] = None,
    out: Optional[TextIO] = None,
    attempts: int = CODE_ATTEMPTS,
) -> Credentials:
    """Print the link, read the verification code, exchange it: at most once per process.

    Progress bars stay off the screen from the link to the exchanged code. A cancel (empty
    line, Ctrl-D, Ctrl-C) or any failure ends authorization for the rest of the process: later
    calls raise at once. Ctrl-C itself propagates as KeyboardInterrupt.
    """
    global _ended
    with FLOW_LOCK:
        if _ended is not None:
            raise DropboxAuthError(_ended)
        try:
            with Terminal(stdin, out) as terminal:
                return _ask(app_key, app_secret, terminal, attempts)
        except DropboxAuthError as exc:
            _ended = str(exc)
            raise
        except KeyboardInterrupt:
            _ended = str(_cancelled("interrupted with Ctrl-C"))
            raise


def _ask(app_key: str, app_secret: Optional[str], terminal: Terminal, attempts: int) -> Credentials:
    import dropbox
    import requests

    flow = dropbox.DropboxOAuth2FlowNoRedirect(
        app_key,
        consumer_secret=app_secret or None,
        token_access_type="offline",
        scope=list(SCOPES),
        use_pkce=True,
        timeout=HTTP_TIMEOUT_S,
    )
    show_link(terminal, flow.start())
    for attempt in range(1, attempts + 1):
        try:
            code = terminal.read_line("Enter verification code: ")
        except KeyboardInterrupt:
            terminal.write("\n")  # the cursor is still after the prompt
            raise
        if not code:
            raise _cancelled("no verification code entered")
        try:
            return _result_to_credentials(app_key, flow.finish(code))
        except requests.HTTPError as exc:
            status = exc.response.status_code if exc.response is not None else None
            if status != 400:
                raise DropboxAuthError(
                    f"Dropbox could not complete the authorization (HTTP {status}); try again later"
                ) from None
            left = attempts - attempt
            if left == 0:
                break
            terminal.write(
                "Dropbox did not accept that code (codes are single-use and expire after a "
                f"few minutes). Paste the code again ({left} attempt{'s' if left > 1 else ''} "
                "left), or press Enter to cancel.\n"
            )
        except requests.RequestException as exc:
            raise DropboxAuthError(
                f"cannot reach Dropbox to complete the authorization: {type(exc).__name__}; "
                "check the network connection and try again"
            ) from None
    raise DropboxAuthError(
        f"Dropbox did not accept the verification code {attempts} times; nothing was saved. "
        "Run the command again to get a new link, and paste the code it shows right away."
    )


class _RedirectCatcher(http.server.BaseHTTPRequestHandler):
    """Answers the browser's one redirect on 127.0.0.1 and hands the query to the flow."""

    server: _RedirectServer

    def do_GET(self) -> None:
        parsed = urllib.parse.urlsplit(self.path)
        params = {k: v[0] for k, v in urllib.parse.parse_qs(parsed.query).items()}
        if parsed.path != "/" or not ({"code", "error", "state"} & set(params)):
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        ok = "code" in params
        body = (
            "<!doctype html><title>dvc-dropbox</title><p>"
            + (
                "dvc-dropbox is authorized. You can close this window."
                if ok
                else "Authorization was not granted. You can close this window."
            )
            + "</p>"
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        self.server.params = params

    def log_message(self, format: str, *args: Any) -> None:  # the query holds the code: no logs
        return


class _RedirectServer(http.server.HTTPServer):
    params: Optional[dict[str, str]] = None


def authorize_with_redirect(
    app_key: str,
    app_secret: Optional[str] = None,
    *,
    port: int = DEFAULT_REDIRECT_PORT,
    timeout: float = REDIRECT_TIMEOUT_S,
    out: Optional[TextIO] = None,
    open_browser: bool = False,
) -> Credentials:
    """Loopback-redirect flow: the code arrives at http://127.0.0.1:<port>/ by itself."""
    import dropbox
    import requests
    from dropbox import oauth

    try:
        server = _RedirectServer(("127.0.0.1", port), _RedirectCatcher)
    except OSError as exc:
        raise DropboxAuthError(
            f"cannot listen on 127.0.0.1:{port} for the authorization redirect "
            f"({exc.strerror or exc}); pass another --port (and register "
            "http://127.0.0.1:<port>/ as a redirect URI of your Dropbox app)"
        ) from None
    redirect_uri = f"http://127.0.0.1:{server.server_address[1]}/"
    session: dict[str, str] = {}
    flow = dropbox.DropboxOAuth2Flow(
        app_key,
        redirect_uri,
        session,
        "dvc-dropbox-csrf",
        consumer_secret=app_secret or None,
        token_access_type="offline",
        scope=list(SCOPES),
        use_pkce=True,
        timeout=HTTP_TIMEOUT_S,
    )
    url = flow.start()
    with Terminal(out=out) as terminal:
        show_link(terminal, url)
        terminal.write(f"Waiting for Dropbox to redirect to {redirect_uri} ...\n")
    if open_browser:
        import webbrowser

        webbrowser.open(url)
    deadline = time.monotonic() + timeout
    server.timeout = 1.0
    try:
        while server.params is None:
            if time.monotonic() > deadline:
                raise DropboxAuthError(
                    f"no authorization arrived within {timeout:.0f} s; nothing was saved. "
                    "Run `dvc-dropbox login` again (without --redirect to paste a code instead)"
                )
            server.handle_request()
    finally:
        server.server_close()
    try:
        result = flow.finish(server.params)
    except oauth.NotApprovedException:
        raise _cancelled("access was denied in the browser") from None
    except (oauth.BadStateException, oauth.CsrfException, oauth.BadRequestException) as exc:
        raise DropboxAuthError(
            f"the authorization redirect was not valid ({type(exc).__name__}); "
            "run the command again"
        ) from None
    except oauth.ProviderException:
        raise DropboxAuthError(
            "Dropbox reported an error during authorization; run the command again"
        ) from None
    except requests.RequestException:
        raise DropboxAuthError(
            "Dropbox did not accept the authorization code; run the command again"
        ) from None
    return _result_to_credentials(app_key, result)
