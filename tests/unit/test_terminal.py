"""`Terminal` in-process: what tqdm and rich write while it is held, and the once-per-process rule.

The screen-level proof is test_prompt_screen.py (real `dvc` on a pty); these pin the mechanism
with bars writing into a buffer, so a regression shows which library got through.
"""

from __future__ import annotations

import io
import sys
import threading
import time

import pytest

from dvc_dropbox.auth import oauth_flow
from dvc_dropbox.auth.terminal import Terminal
from dvc_dropbox.errors import DropboxAuthError


class TtyBuffer(io.StringIO):
    def isatty(self) -> bool:
        return True


def _updates(step: object, seconds: float) -> threading.Thread:
    """Call `step` every 5 ms for `seconds` in another thread (as DVC's workers do)."""

    def run() -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            step()  # type: ignore[operator]
            time.sleep(0.005)

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_tqdm_bars_stay_off_while_held_and_come_back(monkeypatch: pytest.MonkeyPatch) -> None:
    from dvc.progress import Tqdm

    screen = TtyBuffer()
    monkeypatch.setattr(sys, "stderr", screen)  # DVC's Tqdm always draws on sys.stderr
    with Tqdm(desc="busy bar", total=10**6, mininterval=0) as bar:
        bar.update(1)
        assert "busy bar" in screen.getvalue()
        with Terminal(stdin=io.StringIO(), out=screen) as terminal:
            start = len(screen.getvalue())
            terminal.write("Enter verification code: ")
            _updates(lambda: bar.update(1), 0.3).join()
            # DVC logs through external_write_mode, which redraws every registered bar.
            with Tqdm.external_write_mode(file=screen):
                screen.write("a warning\n")
            during = screen.getvalue()[start:]
        after = screen.getvalue()[start + len(during) :]
    assert during == "Enter verification code: a warning\n"
    assert "busy bar" in after  # redrawn below the conversation


def test_rich_live_display_stays_off_while_held_and_comes_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import rich
    from rich.console import Console
    from rich.progress import Progress

    screen = TtyBuffer()
    console = Console(file=screen, force_terminal=True, width=120)
    with Progress(console=console, refresh_per_second=50) as progress:
        task = progress.add_task("busy live", total=None)
        time.sleep(0.1)
        assert "busy live" in screen.getvalue()
        # rich's global console is one Terminal looks at; point it at this one for the test.
        monkeypatch.setattr(rich, "_console", console, raising=False)
        with Terminal(stdin=io.StringIO(), out=screen) as terminal:
            start = len(screen.getvalue())
            terminal.write("Enter verification code: ")
            _updates(lambda: progress.update(task, advance=1), 0.3).join()
            during = screen.getvalue()[start:]
        time.sleep(0.1)
        after = screen.getvalue()[start + len(during) :]
    assert during == "Enter verification code: "
    assert "busy live" in after


def test_terminal_without_bars_writes_plainly() -> None:
    out = TtyBuffer()
    with Terminal(stdin=io.StringIO("  abc \n"), out=out) as terminal:
        assert terminal.read_line("Enter verification code: ") == "abc"
    assert out.getvalue() == "Enter verification code: "
    with Terminal(stdin=io.StringIO(""), out=out) as terminal:
        assert terminal.read_line("Enter verification code: ") is None  # Ctrl-D


def test_one_cancel_ends_authorization_for_the_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(oauth_flow, "_ended", None)
    out = TtyBuffer()
    with pytest.raises(DropboxAuthError, match="cancelled"):
        oauth_flow.authorize_no_redirect("some-app-key", stdin=io.StringIO("\n"), out=out)
    assert out.getvalue().count("Go to the following link") == 1
    assert oauth_flow.ended() is not None
    with pytest.raises(DropboxAuthError, match="cancelled"):
        oauth_flow.authorize_no_redirect("some-app-key", stdin=io.StringIO("code\n"), out=out)
    assert out.getvalue().count("Go to the following link") == 1  # no second link


def test_ctrl_c_ends_authorization_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(oauth_flow, "_ended", None)

    class Interrupting(io.StringIO):
        def readline(self, *args: object) -> str:
            raise KeyboardInterrupt

    out = TtyBuffer()
    with pytest.raises(KeyboardInterrupt):
        oauth_flow.authorize_no_redirect("some-app-key", stdin=Interrupting(), out=out)
    assert out.getvalue().endswith("Enter verification code: \n")
    refused = oauth_flow.ended()
    assert refused is not None and "Ctrl-C" in str(refused)
