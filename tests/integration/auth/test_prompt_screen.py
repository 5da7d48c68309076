"""The first-use prompt as a person sees it: the real `dvc` on a 120x40 pseudo-terminal, rendered.

DVC authorizes in the middle of its progress display (push: under "Pushing" / "Querying remote
cache"; pull: during "Collecting"), so every test here makes sure bars were on the screen when the
link came, then checks the rendered lines: the guide's text exactly, the typed code intact, one
confirmation line, and at most one prompt per command whatever DVC retries.
"""

from __future__ import annotations

import math
import shutil
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.emulator import EmulatorProcess
from tests.helpers.screen import COLUMNS, PtyScreen, find_line, joined
from tests.integration.auth.conftest import (
    DEFAULT_CREDENTIALS,
    DVC,
    LINK_RE,
    RepoFactory,
    approve,
    assert_no_secrets,
    base_env,
    read_credentials,
    remote_url,
    run,
)

PROMPT = "Enter verification code:"
LINK_HEADER = "Go to the following link in your browser:"
ACCOUNT = "Emulator User <emulator@example.com>"  # the emulator's one account
FILES = 60  # enough entries that DVC draws its bars before and around the prompt
# How long the prompt stays up before and after typing: time for any bar to redraw over it.
HOLD_S = 2.0


def _seeded_repo(
    emulator: EmulatorProcess, repo_factory: RepoFactory, dest: Path, url: str
) -> Path:
    """A repository whose data is already in the remote (pushed with an env token)."""
    repo = repo_factory(dest, url, files=FILES)
    token = emulator.token()["access_token"]
    pushed = run([DVC, "push"], repo, base_env(emulator, DROPBOX_ACCESS_TOKEN=token))
    assert pushed.returncode == 0, pushed.stderr
    return repo


def _link_and_prompt(screen: PtyScreen) -> tuple[str, int]:
    """Wait for the prompt; check the rendered link block; the URL and the prompt's line index."""
    url = screen.wait_for_output(LINK_RE).group(1)
    screen.wait_for_output(PROMPT + " ")
    screen.pump(HOLD_S)  # the prompt is up: any bar redraw would land now
    lines = screen.lines()
    prompt_at = find_line(lines, lambda line: line.startswith("Enter verification"))
    assert prompt_at >= 0, "\n".join(lines)
    assert lines[prompt_at] == PROMPT, lines[prompt_at - 8 : prompt_at + 2]
    # The block above it, line by line: header, blank, the indented link (wrapped), blank.
    url_rows = math.ceil((4 + len(url)) / COLUMNS)
    header_at = prompt_at - 3 - url_rows
    block = lines[header_at : prompt_at + 1]
    assert lines[header_at] == LINK_HEADER, block
    assert lines[header_at + 1] == "", block
    assert joined(lines, header_at + 2, url_rows) == "    " + url, block
    assert lines[prompt_at - 1] == "", block
    return url, prompt_at


def _answer(screen: PtyScreen, emulator: EmulatorProcess, url: str, prompt_at: int) -> str:
    """Type the code the browser shows, check it stays readable, press Enter."""
    code = approve(emulator, url)
    screen.type(code, settle=HOLD_S)
    assert screen.lines()[prompt_at] == f"{PROMPT} {code}", screen.lines()[prompt_at - 2 :]
    screen.enter()
    return code


def _confirmation(screen: PtyScreen, path: Path, prompt_at: int, code: str) -> None:
    """After Enter: the typed line untouched, then one line naming the account and the file."""
    screen.wait_for_output(r"credentials saved to [^\r\n]*\r\n")
    screen.pump(0.5)
    lines = screen.lines()
    expected = f"Authorized Dropbox account {ACCOUNT}; credentials saved to {path}"
    assert lines[prompt_at] == f"{PROMPT} {code}", lines[prompt_at - 2 :]
    rows = math.ceil(len(expected) / COLUMNS)
    assert joined(lines, prompt_at + 1, rows) == expected, lines[prompt_at : prompt_at + 4]


def _bars_seen(screen: PtyScreen, *names: str) -> None:
    """The test is only worth something if DVC drew its bars before the link came."""
    before = screen.transcript.split(LINK_HEADER, 1)[0]
    assert any(name in before for name in names), before[-2000:]


@pytest.mark.parametrize(
    ("command", "bars", "subfolder"),
    [
        (["push"], ("Querying remote cache", "Pushing"), ""),
        (["pull"], ("Collecting",), ""),
        (["status", "-c"], ("Collecting", "Querying remote cache", "Checking"), "data"),
    ],
    ids=["push", "pull", "status-c"],
)
def test_prompt_is_legible_with_bars_on_screen(
    emulator: EmulatorProcess,
    repo_factory: RepoFactory,
    tmp_path: Path,
    request: pytest.FixtureRequest,
    command: list[str],
    bars: tuple[str, ...],
    subfolder: str,
) -> None:
    if command == ["push"]:
        repo = repo_factory(tmp_path / "repo", remote_url(request), files=FILES)
    else:
        repo = _seeded_repo(emulator, repo_factory, tmp_path / "repo", remote_url(request))
    if command == ["pull"]:
        shutil.rmtree(repo / ".dvc" / "cache")
        shutil.rmtree(repo / "data")
    path = repo / DEFAULT_CREDENTIALS
    assert not path.exists()
    screen = PtyScreen([DVC, *command], repo / subfolder, base_env(emulator))
    try:
        url, prompt_at = _link_and_prompt(screen)
        _bars_seen(screen, *bars)
        code = _answer(screen, emulator, url, prompt_at)
        _confirmation(screen, path, prompt_at, code)
        status = screen.finish()
    finally:
        screen.close()
    assert status == 0, "\n".join(screen.lines())
    # Nothing drawn later overwrote the conversation.
    lines = screen.lines()
    assert lines[prompt_at] == f"{PROMPT} {code}"
    assert lines[prompt_at + 1].startswith(f"Authorized Dropbox account {ACCOUNT}; credentials")
    assert screen.transcript.count(LINK_HEADER) == 1
    assert read_credentials(path)["refresh_token"]
    assert_no_secrets(screen.transcript, [read_credentials(path)["refresh_token"]])
    if command == ["pull"]:
        assert (repo / "data" / "f000.txt").exists()
    if subfolder:
        assert not (repo / subfolder / ".dvc").exists()


# -- a library user's script: bars redrawn by other threads while the prompt is up ---------------

SCRIPT = textwrap.dedent(
    """
    import sys, threading, time
    import dvc.api
    from dvc.progress import Tqdm
    from dvc.ui import ui

    repo, kind = sys.argv[1], sys.argv[2]
    stop = threading.Event()

    def busy(bar):
        while not stop.is_set():
            bar.update(1)
            time.sleep(0.01)

    if kind == "tqdm":
        with Tqdm(desc="busy work", total=10**6) as bar:
            worker = threading.Thread(target=busy, args=(bar,))
            worker.start()
            time.sleep(0.5)
            try:
                text = dvc.api.read("data/f000.txt", repo=repo)
            finally:
                stop.set()
                worker.join()
    else:
        # DVC's own rich spinner: redrawn 12 times a second by rich's refresh thread.
        with ui.status("busy work"):
            time.sleep(0.5)
            text = dvc.api.read("data/f000.txt", repo=repo)
    print("read", len(text), "characters")
    """
)


@pytest.mark.parametrize("kind", ["tqdm", "rich"])
def test_dvc_api_prompt_while_other_threads_draw(
    emulator: EmulatorProcess,
    repo_factory: RepoFactory,
    tmp_path: Path,
    request: pytest.FixtureRequest,
    kind: str,
) -> None:
    repo = _seeded_repo(emulator, repo_factory, tmp_path / "repo", remote_url(request))
    shutil.rmtree(repo / ".dvc" / "cache")  # so dvc.api reads from the remote
    shutil.rmtree(repo / "data")
    script = tmp_path / "reader.py"
    script.write_text(SCRIPT)
    screen = PtyScreen([sys.executable, str(script), str(repo), kind], repo, base_env(emulator))
    try:
        url, prompt_at = _link_and_prompt(screen)
        _bars_seen(screen, "busy work")
        code = _answer(screen, emulator, url, prompt_at)
        _confirmation(screen, repo / DEFAULT_CREDENTIALS, prompt_at, code)
        status = screen.finish()
    finally:
        screen.close()
    assert status == 0, "\n".join(screen.lines())
    lines = screen.lines()
    assert lines[prompt_at] == f"{PROMPT} {code}"
    assert any(line.startswith("read ") and "characters" in line for line in lines)
    after = screen.transcript.split("credentials saved to", 1)[1]
    assert "busy work" in after, "the display did not come back after the prompt"


# -- at most one prompt per command ---------------------------------------------------------------


def _repo_with_imports(
    emulator: EmulatorProcess,
    sdk_client: Any,
    repo_factory: RepoFactory,
    dest: Path,
    request: pytest.FixtureRequest,
) -> Path:
    """Two Dropbox `import-url` stages and a default Dropbox remote; nothing in the cache."""
    url = remote_url(request)
    source = url.replace("dropbox://", "/") + "-source"
    repo = repo_factory(dest, url, files=5)
    env = base_env(emulator, DROPBOX_ACCESS_TOKEN=emulator.token()["access_token"])
    for name in ("a", "b"):
        sdk_client.files_upload(f"{name} imported\n".encode(), f"{source}/{name}.txt")
        imported = run(
            [DVC, "import-url", f"dropbox:/{source}/{name}.txt", f"{name}.txt"], repo, env
        )
        assert imported.returncode == 0, imported.stderr
    pushed = run([DVC, "push"], repo, env)
    assert pushed.returncode == 0, pushed.stderr
    shutil.rmtree(repo / ".dvc" / "cache")
    shutil.rmtree(repo / "data")
    for name in ("a", "b"):
        (repo / f"{name}.txt").unlink()
    return repo


def test_pull_with_two_imports_asks_once(
    emulator: EmulatorProcess,
    sdk_client: Any,
    repo_factory: RepoFactory,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    repo = _repo_with_imports(emulator, sdk_client, repo_factory, tmp_path / "repo", request)
    screen = PtyScreen([DVC, "pull"], repo, base_env(emulator))
    try:
        url, prompt_at = _link_and_prompt(screen)
        code = _answer(screen, emulator, url, prompt_at)
        _confirmation(screen, repo / DEFAULT_CREDENTIALS, prompt_at, code)
        status = screen.finish()
    finally:
        screen.close()
    assert status == 0, "\n".join(screen.lines())
    assert screen.transcript.count(LINK_HEADER) == 1
    assert (repo / "a.txt").read_text() == "a imported\n"
    assert (repo / "b.txt").read_text() == "b imported\n"
    assert (repo / "data" / "f004.txt").exists()


@pytest.mark.parametrize("cancel", ["enter", "ctrl-d", "ctrl-c"])
def test_cancel_ends_authorization_for_the_command(
    emulator: EmulatorProcess,
    sdk_client: Any,
    repo_factory: RepoFactory,
    tmp_path: Path,
    request: pytest.FixtureRequest,
    cancel: str,
) -> None:
    repo = _repo_with_imports(emulator, sdk_client, repo_factory, tmp_path / "repo", request)
    screen = PtyScreen([DVC, "pull"], repo, base_env(emulator))
    try:
        _, prompt_at = _link_and_prompt(screen)
        if cancel == "enter":
            screen.enter()
        elif cancel == "ctrl-d":
            screen.control("d")
        else:
            screen.control("c")
        status = screen.finish()
    finally:
        screen.close()
    lines = screen.lines()
    text = "\n".join(lines)
    assert status != 0, text
    assert screen.transcript.count(LINK_HEADER) == 1, text
    assert screen.transcript.count(PROMPT) == 1, text
    assert lines[prompt_at].startswith(PROMPT), text
    # The message is longer than the screen is wide: read it back unwrapped.
    printed = "\n".join(screen.printed_lines())
    if cancel == "ctrl-c":
        assert "interrupted by the user" in printed, text
    else:
        assert "Dropbox authorization cancelled" in printed, text
        assert "Run the command again to authorize" in printed, text
    assert "Traceback" not in screen.transcript
    assert not (repo / DEFAULT_CREDENTIALS).exists()
    assert not (repo / "a.txt").exists()
