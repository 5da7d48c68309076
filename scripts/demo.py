"""The user guide's quick start, end to end, against the bundled Dropbox API emulator.

    python3 dev.py demo [--interactive] [--keep]

1. starts `dropbox-emulator` (its own process, HTTPS on 127.0.0.1, through
   `dropbox_emulator.testing`) and points the `dvc` commands at it, in a private HOME;
2. in a fresh git + DVC project: `dvc add data`, `dvc remote add --default myremote
   dropbox://my-directory`, `dvc remote modify myremote app_key ...`;
3. `dvc push` under a terminal: DVC prints the authorization link and asks for the verification
   code. The demo plays the user: it opens the link, clicks "Allow" on the emulator's page and
   types the code (with --interactive you paste it yourself);
4. deletes the data and the cache, `dvc pull`s it back and checks every byte.
"""

from __future__ import annotations

import argparse
import filecmp
import hashlib
import html.parser
import os
import re
import shutil
import subprocess
import sys
import tempfile
import urllib.parse
from pathlib import Path

import pexpect
import requests

from dropbox_emulator.testing import EmulatorServer, EmulatorStartError

BIN = Path(sys.executable).parent
AUTH_URL = re.compile(r"https://\S+/oauth2/authorize\?\S+")


def say(text: str) -> None:
    print(f"\n\033[1m==> {text}\033[0m", flush=True)


def run(cmd: list[str], cwd: Path, env: dict[str, str]) -> None:
    print("$ " + " ".join(cmd), flush=True)
    subprocess.run(cmd, cwd=cwd, env=env, check=True)


class _FormFinder(html.parser.HTMLParser):
    """Finds the authorization page's `Allow` form (action + hidden fields) and the code."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[tuple[str, dict[str, str]]] = []  # (action, fields)
        self.code: str | None = None
        self._in_code = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        name = a.get("name")
        if tag == "form":
            self.forms.append((a.get("action") or "", {}))
        elif tag in {"input", "button"} and self.forms and name:
            self.forms[-1][1][name] = a.get("value") or ""
        elif tag == "code" and a.get("id") == "auth-code":
            self._in_code = True

    def handle_data(self, data: str) -> None:
        if self._in_code:
            self.code = (self.code or "") + data.strip()

    def handle_endtag(self, tag: str) -> None:
        if tag == "code":
            self._in_code = False


def approve(url: str, ca_bundle: str) -> str:
    """What the user does in the browser: open the link, press Allow, copy the code."""
    page = requests.get(url, verify=ca_bundle, timeout=30)
    page.raise_for_status()
    finder = _FormFinder()
    finder.feed(page.text)
    if finder.code:  # an --auto-approve emulator answers with the code right away
        return finder.code
    action, fields = next(f for f in finder.forms if f[1].get("decision") == "allow")
    result = requests.post(
        urllib.parse.urljoin(url, action or url), data=fields, verify=ca_bundle, timeout=30
    )
    result.raise_for_status()
    finder = _FormFinder()
    finder.feed(result.text)
    if not finder.code:
        raise RuntimeError("the authorization page showed no verification code")
    return finder.code


def make_data(root: Path) -> None:
    """A small dataset: a folder of 'images' and a label file."""
    images = root / "data" / "images"
    images.mkdir(parents=True)
    for i in range(50):
        seed = hashlib.sha256(str(i).encode()).digest()
        (images / f"img_{i:03d}.bin").write_bytes(seed * (512 + 64 * i))
    (root / "data" / "labels.csv").write_text(
        "file,label\n" + "".join(f"img_{i:03d}.bin,{i % 3}\n" for i in range(50))
    )


def push_with_authorization(
    repo: Path, env: dict[str, str], ca_bundle: str, interactive: bool
) -> None:
    cmd = f"{BIN / 'dvc'} push"
    print("$ dvc push", flush=True)
    if interactive:
        subprocess.run([str(BIN / "dvc"), "push"], cwd=repo, env=env, check=True)
        return
    child = pexpect.spawn(cmd, cwd=str(repo), env=env, encoding="utf-8", timeout=300)
    child.logfile_read = sys.stdout
    child.expect(r"Enter verification code:")
    match = AUTH_URL.search(child.before or "")
    if not match:
        raise RuntimeError("dvc push printed no authorization link")
    code = approve(match.group(0), ca_bundle)
    print(
        "\n[demo] opened the link, pressed Allow on the Dropbox page, pasting the code", flush=True
    )
    child.sendline(code)
    child.expect(pexpect.EOF)
    child.close()
    if child.exitstatus != 0:
        raise RuntimeError(f"dvc push failed (exit {child.exitstatus})")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--interactive", action="store_true", help="paste the code yourself")
    parser.add_argument("--keep", action="store_true", help="keep the demo project directory")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="dvc-dropbox-demo-"))
    emulator = EmulatorServer(data_dir=work / "emulator")
    try:
        try:
            emulator.start()
        except EmulatorStartError as exc:
            print(f"[demo] {exc}", file=sys.stderr)
            return 1
        say(f"Dropbox API emulator listening on {emulator.url}")
        # Only host names and a CA bundle differ from real Dropbox: no credentials, no app key
        # (the remote's app_key option is what a user sets) and none of your own configuration.
        (work / "home").mkdir()
        env = emulator.isolated_env(work / "home", app_key=False)
        env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
        app_key = emulator.app_key

        repo = work / "project"
        repo.mkdir()
        say("A fresh project with some data")
        run(["git", "init", "-q"], repo, env)
        run(["dvc", "init", "-q"], repo, env)
        make_data(repo)
        run(["dvc", "add", "data"], repo, env)

        say("Add the Dropbox remote (user guide: Quick start)")
        run(["dvc", "remote", "add", "--default", "myremote", "dropbox://my-directory"], repo, env)
        run(["dvc", "remote", "modify", "myremote", "app_key", app_key], repo, env)

        say("First push: authorize on Dropbox, then upload")
        push_with_authorization(repo, env, emulator.ca_bundle, args.interactive)
        creds = repo / ".dvc" / "tmp" / "dropbox-user-credentials.json"
        print(
            f"[demo] credentials saved in {creds.relative_to(repo)} "
            f"(mode {oct(creds.stat().st_mode & 0o777)})",
            flush=True,
        )

        say("Lose the data and the cache, then pull it back (no prompt this time)")
        original = work / "original-data"
        shutil.copytree(repo / "data", original)
        shutil.rmtree(repo / "data")
        shutil.rmtree(repo / ".dvc" / "cache")
        run(["dvc", "pull"], repo, env)
        cmp = filecmp.dircmp(original, repo / "data")
        same = not (cmp.diff_files or cmp.left_only or cmp.right_only) and all(
            filecmp.cmp(original / "images" / n, repo / "data" / "images" / n, shallow=False)
            for n in os.listdir(original / "images")
        )
        if not same:
            print("[demo] FAILED: pulled data differs from what was pushed", file=sys.stderr)
            return 1
        run(["dvc", "status", "-c"], repo, env)
        say("Done: pushed to dropbox://my-directory and pulled back byte-identical")
        return 0
    finally:
        emulator.stop()
        if args.keep:
            print(f"[demo] project kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
