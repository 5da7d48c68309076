"""Fixtures for the authorization tests: a git+DVC repo with a dropbox remote, the emulator's
consent page driven over HTTPS (as a browser would), and a check that no token leaks."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Optional

import pytest
import requests

from dvc_dropbox._register import register
from tests.helpers.emulator import EmulatorProcess

register()

VENV_BIN = Path(sys.executable).parent
DVC = str(VENV_BIN / "dvc")
DVC_DROPBOX = str(VENV_BIN / "dvc-dropbox")
APP_KEY = "emulator-app-key"
DEFAULT_CREDENTIALS = Path(".dvc") / "tmp" / "dropbox-user-credentials.json"
CODE_RE = re.compile(r'<code id="auth-code">([^<]+)</code>')
# "Go to the following link in your browser:" + blank line + indented URL + blank line.
LINK_RE = r"Go to the following link in your browser:\r?\n\r?\n    (https://\S+)\r?\n"
CRED_VARS = (
    "DROPBOX_ACCESS_TOKEN",
    "DROPBOX_REFRESH_TOKEN",
    "DROPBOX_EXPIRES_AT",
    "DROPBOX_CREDENTIALS_FILE",
    "DROPBOX_APP_KEY",
)


def approve(emulator: EmulatorProcess, url: str, decision: str = "allow") -> str:
    """Open the authorization link, press Allow, return the code the page shows."""
    assert url.startswith(emulator.url + "/oauth2/authorize?"), url
    page = requests.get(url, verify=emulator.ca_bundle, timeout=30)
    page.raise_for_status()
    assert 'id="allow"' in page.text
    result = requests.post(
        url,
        data={"decision": decision},
        verify=emulator.ca_bundle,
        timeout=30,
        allow_redirects=False,
    )
    result.raise_for_status()
    match = CODE_RE.search(result.text)
    assert match, result.text
    return match.group(1)


def base_env(emulator: EmulatorProcess, **extra: str) -> dict[str, str]:
    """Environment for a `dvc`/`dvc-dropbox` subprocess: emulator hosts, no credentials."""
    env = {k: v for k, v in os.environ.items() if k not in CRED_VARS}
    env.update(emulator.env)
    env.pop("DROPBOX_APP_KEY", None)  # the remote's app_key option is what users set
    env["DVC_NO_ANALYTICS"] = "1"
    env.update(extra)
    return env


def run(
    args: list[str], cwd: Path, env: dict[str, str], timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    """Run a command without a terminal (stdin is /dev/null), capturing its output."""
    return subprocess.run(
        args,
        cwd=str(cwd),
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def assert_no_secrets(text: str, secrets: Iterable[Optional[str]]) -> None:
    for secret in secrets:
        if secret:
            assert secret not in text, "a token appeared in the output"


def read_credentials(path: Path) -> dict[str, Any]:
    doc = json.loads(path.read_text())
    return doc["credentials"][APP_KEY]


def make_repo(path: Path, url: str, files: int = 1, app_key: Optional[str] = APP_KEY) -> Path:
    """A git + DVC repository with `files` tracked files in data/ and a default dropbox remote."""
    path.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k not in CRED_VARS}
    env["DVC_NO_ANALYTICS"] = "1"

    def sh(*args: str) -> None:
        subprocess.run(args, cwd=str(path), env=env, check=True, capture_output=True, timeout=120)

    sh("git", "init", "-q")
    sh("git", "config", "user.email", "test@example.com")
    sh("git", "config", "user.name", "test")
    sh(DVC, "init", "-q")
    data = path / "data"
    data.mkdir()
    for i in range(files):
        (data / f"f{i:03d}.txt").write_text(f"{path.name} file {i}\n" * (i + 1))
    sh(DVC, "add", "-q", "data")
    sh(DVC, "remote", "add", "-d", "myremote", url)
    if app_key:
        sh(DVC, "remote", "modify", "myremote", "app_key", app_key)
    sh(DVC, "config", "core.autostage", "false")
    return path


TEMPLATE_URL = "dropbox://auth-tests/template"


class RepoFactory:
    """Copies of template repositories (building one runs `dvc` six times; copying is instant)."""

    def __init__(self, root: Path):
        self.root = root
        self.templates: dict[int, Path] = {}

    def __call__(self, dest: Path, url: str, files: int = 1) -> Path:
        template = self.templates.get(files)
        if template is None:
            template = make_repo(self.root / f"template-{files}", TEMPLATE_URL, files=files)
            self.templates[files] = template
        shutil.copytree(template, dest, symlinks=True)
        config = dest / ".dvc" / "config"
        config.write_text(config.read_text().replace(TEMPLATE_URL, url))
        return dest


@pytest.fixture(scope="session")
def repo_factory(tmp_path_factory: pytest.TempPathFactory) -> RepoFactory:
    return RepoFactory(tmp_path_factory.mktemp("repo-templates"))


def remote_url(request: pytest.FixtureRequest, suffix: str = "") -> str:
    name = re.sub(r"[^A-Za-z0-9]+", "-", request.node.name)[:60]
    return f"dropbox://auth-tests/{name}{suffix}-{os.getpid()}"


@pytest.fixture
def repo(tmp_path: Path, request: pytest.FixtureRequest, repo_factory: RepoFactory) -> Path:
    """A fresh repository whose remote folder is unique to the test."""
    return repo_factory(tmp_path / "repo", remote_url(request))


@pytest.fixture
def clean_env(emulator_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process tests: emulator hosts + CA bundle, no credential variables at all."""
    for var in CRED_VARS:
        monkeypatch.delenv(var, raising=False)
