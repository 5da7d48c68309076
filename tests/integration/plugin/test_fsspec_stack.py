"""`dropbox://` in the rest of the Python data stack: fsspec, pandas and dvc.api, each in a fresh
Python process with the emulator's env and a refresh token from its control API (as a user's
script or notebook would run), talking to the emulator over HTTPS through the official SDK."""

from __future__ import annotations

import hashlib
import io
import json
import os
import random
import re
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path
from typing import Any

import pexpect
import pytest
from packaging.version import Version

from dvc_dropbox.auth.credentials import DEFAULT_FILE_NAME
from tests.helpers.content_hash import content_hash
from tests.helpers.emulator import EmulatorProcess
from tests.integration.auth.conftest import LINK_RE, approve, assert_no_secrets

from .cli import dvc, make_repo, run
from .conftest import isolated_cli_env

MiB = 1024 * 1024
PYTHON_TIMEOUT_S = 180
OURS = "dvc_dropbox.fs.DropboxFS"
PYPROJECT = Path(__file__).resolve().parents[3] / "pyproject.toml"


@pytest.fixture(scope="module")
def token(emulator: EmulatorProcess) -> dict[str, Any]:
    return emulator.token()


@pytest.fixture
def folder(request: pytest.FixtureRequest) -> str:
    """A Dropbox folder of this test's own, without the leading slash (as in the URL)."""
    name = re.sub(r"[^A-Za-z0-9]+", "-", request.node.name)[:50]
    return f"fsspec-tests/{name}-{uuid.uuid4().hex[:8]}"


def python_env(
    emulator: EmulatorProcess, home: Path, token: dict[str, Any] | None
) -> dict[str, str]:
    """A user's shell: the emulator's env, DROPBOX_APP_KEY and (if given) DROPBOX_REFRESH_TOKEN."""
    env = isolated_cli_env(emulator, token or {"access_token": "", "refresh_token": ""}, home)
    env.pop("DROPBOX_ACCESS_TOKEN", None)
    if token is None:
        env.pop("DROPBOX_REFRESH_TOKEN", None)
    env["DROPBOX_APP_KEY"] = emulator.env["DROPBOX_APP_KEY"]
    return env


def run_python(code: str, cwd: Path, env: dict[str, str]) -> Any:
    """Run `code` in a new interpreter; it prints one JSON document last."""
    proc = run([sys.executable, "-c", textwrap.dedent(code)], cwd, env)
    assert "could not register" not in proc.stderr, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def download(sdk: Any, path: str) -> bytes:
    return sdk.files_download(path)[1].content


# -- which filesystem `dropbox://` gets --------------------------------------------------------

# dropboxdrivefs declares no entry point (neither its setup.py nor its pyproject.toml), so an
# installed copy adds exactly this to a process: an importable module that fsspec's built-in
# `known_implementations` names for dropbox://.
STANDIN = '''\
"""Stand-in for dropboxdrivefs, which fsspec's built-in table maps dropbox:// to."""
from fsspec import AbstractFileSystem


class DropboxDriveFileSystem(AbstractFileSystem):
    protocol = "dropbox"
'''

# Hides our entry point from fsspec: what fsspec does when dvc-dropbox is not installed.
HIDE_OUR_ENTRY_POINT = """
import importlib.metadata as metadata

_real = metadata.entry_points


class _WithoutOurs:
    def select(self, group):
        try:
            found = _real(group=group)
        except TypeError:  # Python 3.9
            found = _real().get(group, [])
        return [ep for ep in found if not ep.value.startswith("dvc_dropbox.")]

    def get(self, group, default=()):
        return self.select(group)


metadata.entry_points = lambda: _WithoutOurs()
"""

WHICH_FILESYSTEM = """
import dropboxdrivefs  # installed and imported first: it must still not win
import json
import fsspec

cls = fsspec.get_filesystem_class("dropbox")
opened = fsspec.open("dropbox://{folder}/data.csv")
result = {{
    "fsspec": fsspec.__version__,
    "fsspec_file": fsspec.__file__,
    "class": cls.__module__ + "." + cls.__qualname__,
    "filesystem": type(fsspec.filesystem("dropbox")).__module__ + "."
    + type(fsspec.filesystem("dropbox")).__qualname__,
    "open": type(opened.fs).__module__ + "." + type(opened.fs).__qualname__,
    "path": opened.path,
}}
if result["class"] == "{ours}":
    with fsspec.open("dropbox://{folder}/data.csv", "wb") as fobj:
        fobj.write(b"a,b\\n1,2\\n")
    with fsspec.open("dropbox://{folder}/data.csv", "rb") as fobj:
        result["read"] = fobj.read().decode()
print(json.dumps(result))
"""


def declared_minimum_fsspec() -> str:
    match = re.search(r'"fsspec>=([0-9][0-9.]*)"', PYPROJECT.read_text())
    assert match, "pyproject.toml declares no fsspec minimum"
    return match.group(1)


@pytest.fixture(scope="session")
def oldest_fsspec(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The oldest fsspec pyproject.toml allows, installed on its own (pip, from the registry)."""
    target = tmp_path_factory.mktemp("oldest-fsspec")
    version = declared_minimum_fsspec()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--target",
            str(target),
            f"fsspec=={version}",
        ],
        capture_output=True,
        text=True,
        timeout=PYTHON_TIMEOUT_S,
        check=False,
    )
    if proc.returncode != 0:
        pytest.skip(f"pip could not install fsspec=={version} (offline?): {proc.stderr[-500:]}")
    return target


@pytest.mark.parametrize(
    ("which_fsspec", "ours_visible"),
    [("installed", True), ("oldest", True), ("installed", False)],
    ids=["installed-fsspec", "oldest-allowed-fsspec", "control-without-our-entry-point"],
)
def test_dropbox_urls_get_our_filesystem_even_beside_dropboxdrivefs(
    tmp_path: Path,
    emulator: EmulatorProcess,
    token: dict[str, Any],
    dropbox_sdk: Any,
    folder: str,
    request: pytest.FixtureRequest,
    which_fsspec: str,
    ours_visible: bool,
) -> None:
    standin = tmp_path / "site"
    (standin / "dropboxdrivefs").mkdir(parents=True)
    (standin / "dropboxdrivefs" / "__init__.py").write_text(STANDIN)
    paths = [str(standin)]
    if which_fsspec == "oldest":
        paths.insert(0, str(request.getfixturevalue("oldest_fsspec")))
    env = python_env(emulator, tmp_path / "home", token)
    env["PYTHONPATH"] = os.pathsep.join(paths)
    code = WHICH_FILESYSTEM.format(folder=folder, ours=OURS)
    if not ours_visible:
        code = HIDE_OUR_ENTRY_POINT + code

    got = run_python(code, tmp_path, env)

    if which_fsspec == "oldest":
        assert Version(got["fsspec"]) == Version(declared_minimum_fsspec()), got
    if not ours_visible:
        # Without our entry point the stand-in wins: the assertions below can fail.
        assert got["class"] == "dropboxdrivefs.DropboxDriveFileSystem", got
        return
    assert got["class"] == got["filesystem"] == got["open"] == OURS, got
    assert got["path"] == f"{folder}/data.csv", got  # the URL's netloc is the first folder
    assert got["read"] == "a,b\n1,2\n", got
    # The same folder DVC means by dropbox://<folder>: /<folder> from the Dropbox root.
    assert download(dropbox_sdk, f"/{folder}/data.csv") == b"a,b\n1,2\n"


# -- fsspec.open -------------------------------------------------------------------------------


def test_fsspec_open_reads_and_writes_the_folder_dvc_means(
    tmp_path: Path, emulator: EmulatorProcess, token: dict[str, Any], dropbox_sdk: Any, folder: str
) -> None:
    dropbox_sdk.files_upload("from the SDK: ä\n".encode(), f"/{folder}/in.txt")
    got = run_python(
        f"""
        import json, fsspec
        with fsspec.open("dropbox://{folder}/in.txt", "r", encoding="utf-8") as fobj:
            text = fobj.read()
        with fsspec.open("dropbox://{folder}/sub/out.txt", "w", encoding="utf-8") as fobj:
            fobj.write(text.upper())
        fs = fsspec.filesystem("dropbox")
        print(json.dumps({{"text": text, "ls": fs.ls("dropbox://{folder}", detail=False)}}))
        """,
        tmp_path,
        python_env(emulator, tmp_path / "home", token),
    )
    assert got["text"] == "from the SDK: ä\n"
    assert got["ls"] == [f"{folder}/in.txt", f"{folder}/sub"]
    assert download(dropbox_sdk, f"/{folder}/sub/out.txt") == "FROM THE SDK: Ä\n".encode()


def test_fsspec_multi_chunk_write_is_streamed_in_chunks_and_verified(
    tmp_path: Path, emulator: EmulatorProcess, token: dict[str, Any], dropbox_sdk: Any, folder: str
) -> None:
    size = 10 * MiB + 12345  # three 4 MiB chunks: start, append, append (closing)
    data = random.Random(7).randbytes(size)
    source = tmp_path / "big.bin"
    source.write_bytes(data)
    before = emulator.stats()["requests"]

    got = run_python(
        f"""
        import hashlib, json, fsspec
        url = "dropbox://{folder}/big.bin"
        with open({str(source)!r}, "rb") as src, fsspec.open(url, "wb", chunk_size="4MiB") as dst:
            for _ in range(64):
                piece = src.read(1024 * 1024)  # a writer's pace, not the chunk size
                if not piece:
                    break
                dst.write(piece)
        with fsspec.open(url, "rb") as fobj:
            back = hashlib.sha256(fobj.read()).hexdigest()
        print(json.dumps({{"sha256": back, "info": fsspec.filesystem("dropbox").info(url)}},
                         default=str))
        """,
        tmp_path,
        python_env(emulator, tmp_path / "home", token),
    )

    after = emulator.stats()["requests"]

    def delta(route: str) -> int:
        return int(after.get(route, 0)) - int(before.get(route, 0))

    assert delta("files/upload_session/start") == 1, (before, after)
    assert delta("files/upload_session/append_v2") == 2, (before, after)  # chunk_size honoured
    assert delta("files/upload") == 0, (before, after)
    metadata = dropbox_sdk.files_get_metadata(f"/{folder}/big.bin")
    assert metadata.size == size
    assert metadata.content_hash == content_hash(data)
    assert got["info"]["checksum"] == content_hash(data)
    assert got["sha256"] == hashlib.sha256(data).hexdigest()


# -- pandas ------------------------------------------------------------------------------------


def test_pandas_reads_and_writes_csv(
    tmp_path: Path, emulator: EmulatorProcess, token: dict[str, Any], dropbox_sdk: Any, folder: str
) -> None:
    pytest.importorskip("pandas", reason="pandas is not installed (the tests extra has it)")
    dropbox_sdk.files_upload(b"city,people\nBern,134\nBasel,173\n", f"/{folder}/in.csv")

    got = run_python(
        f"""
        import json
        import pandas as pd
        df = pd.read_csv("dropbox://{folder}/in.csv")
        df["thousands"] = df["people"] * 1000
        df.to_csv("dropbox://{folder}/out/result.csv", index=False,
                  storage_options={{"chunk_size": "4MiB", "jobs": 4}})
        back = pd.read_csv("dropbox://{folder}/out/result.csv", storage_options={{"timeout": 30}})
        print(json.dumps({{"read": df.to_dict("list"), "back": back.to_dict("list")}}))
        """,
        tmp_path,
        python_env(emulator, tmp_path / "home", token),
    )

    assert got["read"]["people"] == [134, 173]
    assert got["back"] == {
        "city": ["Bern", "Basel"],
        "people": [134, 173],
        "thousands": [134000, 173000],
    }
    written = download(dropbox_sdk, f"/{folder}/out/result.csv").decode()
    assert written.splitlines() == ["city,people,thousands", "Bern,134,134000", "Basel,173,173000"]


# -- storage_options ---------------------------------------------------------------------------

BAD_OPTIONS = """
import json, fsspec
import pandas as pd

results = {{}}
cases = {{
    "wrong_app_key": lambda: fsspec.open("dropbox://{folder}/in.txt", app_key="not-my-app")
    .open().read(),
    "misspelt": lambda: fsspec.filesystem("dropbox", app_kye="x"),
    "batch_size": lambda: pd.read_csv("dropbox://{folder}/in.txt",
                                      storage_options={{"batch_size": 0}}),
    "chunk_size": lambda: fsspec.filesystem("dropbox", chunk_size="5MiB"),
}}
for name, case in cases.items():
    try:
        case()
        results[name] = None
    except Exception as exc:
        results[name] = {{
            "bases": [c.__name__ for c in type(exc).__mro__],
            "message": str(exc),
        }}
print(json.dumps(results))
"""


def test_storage_options_are_the_remote_options_and_checked(
    tmp_path: Path, emulator: EmulatorProcess, token: dict[str, Any], dropbox_sdk: Any, folder: str
) -> None:
    pytest.importorskip("pandas", reason="pandas is not installed (the tests extra has it)")
    dropbox_sdk.files_upload(b"a\n", f"/{folder}/in.txt")
    env = python_env(emulator, tmp_path / "home", token)

    got = run_python(BAD_OPTIONS.format(folder=folder), tmp_path, env)

    wrong = got["wrong_app_key"]
    assert wrong is not None, "a wrong app_key storage option was not used"
    assert "DropboxAuthError" in wrong["bases"] and "PermissionError" in wrong["bases"], wrong
    message = wrong["message"]
    assert "does not accept the app key from the app_key storage option" in message, message
    assert "invalid_client" in message and "dvc remote modify" not in message, message
    assert_no_secrets(json.dumps(got), [token["refresh_token"], token["access_token"]])
    assert got["misspelt"]["message"].startswith(
        "unknown Dropbox storage option 'app_kye' (did you mean 'app_key'?)"
    ), got
    assert "batch_size must be a whole number from 1 to 1000, not 0" in got["batch_size"]["message"]
    assert "chunk_size must be a multiple of 4 MiB" in got["chunk_size"]["message"], got
    for case in ("misspelt", "batch_size", "chunk_size"):
        assert "ValueError" in got[case]["bases"], got


# -- credentials: environment -> file -> prompt, as for `dvc` ------------------------------------


def test_credentials_file_of_the_repository_is_used_as_by_dvc(
    tmp_path: Path, emulator: EmulatorProcess, dropbox_sdk: Any, folder: str
) -> None:
    from dvc_dropbox.auth.credentials import Credentials, CredentialsFile, parse_expiry

    env = python_env(emulator, tmp_path / "home", None)
    repo = make_repo(tmp_path / "repo", env)
    (repo / "notebooks").mkdir()
    issued = emulator.token()
    store = CredentialsFile(repo / ".dvc" / "tmp" / DEFAULT_FILE_NAME)
    with store.locked():
        store.put(
            Credentials(
                app_key=env["DROPBOX_APP_KEY"],
                refresh_token=issued["refresh_token"],
                access_token=issued["access_token"],
                expires_at=parse_expiry(issued["expires_at"]),
                account_id=issued["account_id"],
            )
        )
    dropbox_sdk.files_upload(b"saved credentials work\n", f"/{folder}/in.txt")

    # Run from a subfolder, with stdin not a terminal: only the file can authorize.
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            f"import fsspec; print(fsspec.open('dropbox://{folder}/in.txt')"
            ".open().read().decode(), end='')",
        ],
        cwd=repo / "notebooks",
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=PYTHON_TIMEOUT_S,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "saved credentials work\n"


def test_without_credentials_a_terminal_gets_the_prompt(
    tmp_path: Path, emulator: EmulatorProcess, dropbox_sdk: Any, folder: str
) -> None:
    pyte = pytest.importorskip("pyte", reason="pyte renders the terminal (the tests extra has it)")
    env = python_env(emulator, tmp_path / "home", None)
    dropbox_sdk.files_upload(b"a,b\n1,2\n", f"/{folder}/data.csv")
    code = (
        f"import fsspec; print('read:', fsspec.open('dropbox://{folder}/data.csv').open().read())"
    )
    work = tmp_path / "work"
    work.mkdir()

    transcript = io.StringIO()
    child = pexpect.spawn(
        sys.executable,
        ["-c", code],
        cwd=str(work),
        env=env,
        encoding="utf-8",
        timeout=PYTHON_TIMEOUT_S,
        dimensions=(40, 120),
    )
    child.logfile_read = transcript
    child.expect(LINK_RE)
    url = child.match.group(1)
    child.expect_exact("Enter verification code:")
    auth_code = approve(emulator, url)
    child.sendline(auth_code)
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0, transcript.getvalue()

    screen = pyte.Screen(120, 40)
    pyte.Stream(screen).feed(transcript.getvalue().replace("\n", "\r\n").replace("\r\r", "\r"))
    lines = [line.rstrip() for line in screen.display]
    assert "Go to the following link in your browser:" in lines, lines
    assert any(line.strip().startswith(emulator.url + "/oauth2/authorize?") for line in lines)
    assert f"Enter verification code: {auth_code}" in lines, lines
    assert "read: b'a,b\\n1,2\\n'" in lines, lines
    saved = list((tmp_path / "home").rglob(DEFAULT_FILE_NAME))
    assert len(saved) == 1, saved  # the per-user file, as `dvc` uses outside a repository
    stored = json.loads(saved[0].read_text())["credentials"][env["DROPBOX_APP_KEY"]]
    assert stored["refresh_token"] and stored["access_token"]
    assert_no_secrets(transcript.getvalue(), [stored["refresh_token"], stored["access_token"]])

    # Saved: the next process needs neither a terminal nor a prompt.
    again = subprocess.run(
        [sys.executable, "-c", code],
        cwd=work,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=PYTHON_TIMEOUT_S,
        check=False,
    )
    assert again.returncode == 0, again.stderr
    assert again.stdout == "read: b'a,b\\n1,2\\n'\n"


# -- dvc.api -----------------------------------------------------------------------------------


def test_dvc_api_open_streams_from_the_dropbox_remote(
    tmp_path: Path, emulator: EmulatorProcess, token: dict[str, Any], folder: str
) -> None:
    env = python_env(emulator, tmp_path / "home", token)
    repo = make_repo(tmp_path / "repo", env)
    (repo / "data.csv").write_text("x,y\n1,2\n3,4\n")
    dvc(repo, env, "add", "data.csv")
    dvc(repo, env, "remote", "add", "-d", "store", f"dropbox://{folder}/dvc-store")
    dvc(repo, env, "push")
    # Nothing local left: dvc.api must get the bytes from Dropbox.
    (repo / "data.csv").unlink()
    run(["rm", "-rf", str(repo / ".dvc" / "cache")], repo, env)
    before = emulator.stats()["requests"].get("files/download", 0)

    got = run_python(
        f"""
        import json
        import dvc.api
        with dvc.api.open("data.csv", repo={str(repo)!r}) as fobj:
            text = fobj.read()
        print(json.dumps({{"text": text}}))
        """,
        tmp_path,
        env,
    )

    assert got["text"] == "x,y\n1,2\n3,4\n"
    assert emulator.stats()["requests"].get("files/download", 0) > before
