"""`dvc pull` of a file of several chunks: parallel ranged reads, through the real `dvc` (issue 12,
item 5).

With the remote's `chunk_size` at 4 MiB a 21 MiB file is six ranges: the first from the whole-file
answer that tells its size, the others each a `Range` request, up to four at once. Whatever
happens to a range on the way, the file is installed only with the bytes its content_hash and its
DVC name (md5) say, and no temporary file stays behind.
"""

from __future__ import annotations

import hashlib
import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dropbox import files

from dvc_dropbox.transfer.downloads import plan_ranges
from tests.helpers.emulator import EmulatorProcess
from tests.integration.plugin.cli import dvc, make_repo, run

MiB = 1024 * 1024
CHUNK = 4 * MiB
SIZE = 5 * CHUNK + MiB + 12345
RANGES = len(plan_ranges(SIZE, CHUNK))  # 6
TMP_SUFFIX = ".dropbox-tmp"


@pytest.fixture
def clean_faults(emulator: EmulatorProcess) -> Iterator[EmulatorProcess]:
    emulator.clear_faults()
    yield emulator
    emulator.clear_faults()


class Pushed:
    """A repo whose `big.bin` (SIZE bytes) is pushed, then removed from workspace and cache."""

    def __init__(self, tmp_path: Path, env: dict[str, str]):
        self.env = env
        self.repo = make_repo(tmp_path / "repo", env)
        self.data = os.urandom(SIZE)
        (self.repo / "big.bin").write_bytes(self.data)
        dvc(self.repo, env, "add", "-q", "big.bin")
        self.folder = f"ranged-{uuid.uuid4().hex[:8]}/proj"
        dvc(self.repo, env, "remote", "add", "-d", "r", f"dropbox://{self.folder}")
        dvc(self.repo, env, "remote", "modify", "r", "chunk_size", str(CHUNK // MiB))
        dvc(self.repo, env, "push", "-q")
        (self.repo / "big.bin").unlink()
        for path in (self.repo / ".dvc" / "cache").rglob("*"):
            if path.is_file():
                path.unlink()

    @property
    def object_path(self) -> str:
        md5 = hashlib.md5(self.data).hexdigest()
        return f"/{self.folder}/files/md5/{md5[:2]}/{md5[2:]}"

    def cache_files(self) -> list[Path]:
        return [p for p in (self.repo / ".dvc" / "cache").rglob("*") if p.is_file()]

    def leftovers(self) -> list[Path]:
        return [p for p in self.repo.rglob("*") if p.name.endswith(TMP_SUFFIX)]

    def pull(self, emulator: EmulatorProcess, *, cwd: Path | None = None) -> tuple[Any, int]:
        """`dvc pull`; its result and the number of files/download requests it made."""
        before = emulator.stats()["requests"].get("files/download", 0)
        proc = dvc(cwd or self.repo, self.env, "pull", check=False)
        after = emulator.stats()["requests"].get("files/download", 0)
        return proc, after - before


@pytest.fixture
def pushed(tmp_path: Path, cli_env: dict[str, str]) -> Pushed:
    return Pushed(tmp_path, cli_env)


def test_a_multi_range_pull_is_byte_identical(
    pushed: Pushed, clean_faults: EmulatorProcess
) -> None:
    sub = pushed.repo / "sub"
    sub.mkdir()
    proc, downloads = pushed.pull(clean_faults, cwd=sub)  # from a subfolder of the project
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    assert (pushed.repo / "big.bin").read_bytes() == pushed.data
    # One whole-file answer (it serves the first range), one Range request per other range.
    assert downloads == RANGES, output
    assert [p.read_bytes() for p in pushed.cache_files()] == [pushed.data]
    assert pushed.leftovers() == []
    assert "Traceback" not in output and "downloading it again" not in output


def test_a_corrupt_range_is_detected_retried_and_never_installed(
    pushed: Pushed, clean_faults: EmulatorProcess
) -> None:
    # The first fault flips a byte in the middle of the whole-file answer, past the first range
    # (never read); the second one flips a byte in the middle of a ranged answer.
    clean_faults.fault(route="files/download", corrupt_body=True, times=2)
    proc, downloads = pushed.pull(clean_faults)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    assert output.count("its bytes do not match Dropbox's content_hash") == 1, output
    assert "downloading it again (try 2 of 3)" in output
    assert downloads == 2 * RANGES, output  # the whole file again, not only the bad range
    assert (pushed.repo / "big.bin").read_bytes() == pushed.data
    assert [p.read_bytes() for p in pushed.cache_files()] == [pushed.data]
    assert pushed.leftovers() == []


def test_ranges_that_stay_corrupt_install_nothing(
    pushed: Pushed, clean_faults: EmulatorProcess
) -> None:
    clean_faults.fault(route="files/download", corrupt_body=True, times=100)
    proc, downloads = pushed.pull(clean_faults)
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, output
    assert "big.bin" not in os.listdir(pushed.repo)
    assert "is corrupt" in output, output
    assert "1 files failed to download" in output, output  # DVC's wording
    assert "unexpected error" not in output and "Traceback" not in output, output
    assert downloads == 3 * RANGES, output  # MAX_VERIFY_ATTEMPTS tries, every range each
    assert pushed.cache_files() == []
    assert pushed.leftovers() == []


def test_a_connection_dropped_mid_range_resumes(
    pushed: Pushed, clean_faults: EmulatorProcess
) -> None:
    # Cut the whole-file answer 1 MiB into the first range, and the first ranged answer 1 MiB
    # into its range: each goes on from where it broke with one more Range request.
    clean_faults.fault(route="files/download", drop_connection=True, after_bytes=MiB, times=2)
    proc, downloads = pushed.pull(clean_faults)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    assert downloads == RANGES + 2, output
    assert (pushed.repo / "big.bin").read_bytes() == pushed.data
    assert pushed.leftovers() == []
    assert "Traceback" not in output and "downloading it again" not in output


def test_the_md5_its_name_says_is_checked_on_a_ranged_pull(
    pushed: Pushed, clean_faults: EmulatorProcess, dropbox_sdk: Any
) -> None:
    # Other bytes of the same size under the object's name: Dropbox's content_hash describes
    # them, so only the md5 (hashed in order while the ranges arrive) can tell.
    other = os.urandom(SIZE)
    dropbox_sdk.files_upload(other, pushed.object_path, mode=files.WriteMode.overwrite)
    proc, downloads = pushed.pull(clean_faults)
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, output
    assert "does not hold the DVC object its name says" in output, output
    assert pushed.object_path in output
    assert "1 files failed to download" in output, output
    assert "unexpected error" not in output and "Traceback" not in output, output
    assert downloads == 3 * RANGES, output
    assert pushed.cache_files() == []
    assert not (pushed.repo / "big.bin").exists()
    assert pushed.leftovers() == []


# `dvc` as on Windows: its Python has no os.pread/os.pwrite (`dvc pull` then writes each range
# through a seek under a lock, transfer/positioned.py). The real dvc CLI, in its own process.
WINDOWS_OS_DVC = """
import os, sys
del os.pread, os.pwrite
from dvc.cli import main
sys.exit(main())
"""


def test_a_multi_range_pull_works_without_pread_and_pwrite(
    pushed: Pushed, clean_faults: EmulatorProcess
) -> None:
    before = clean_faults.stats()["requests"].get("files/download", 0)
    proc = run([sys.executable, "-c", WINDOWS_OS_DVC, "pull"], pushed.repo, pushed.env, check=False)
    downloads = clean_faults.stats()["requests"].get("files/download", 0) - before
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    assert (pushed.repo / "big.bin").read_bytes() == pushed.data  # content_hash and md5 held
    assert downloads == RANGES, output  # still parallel ranges, not one stream
    assert [p.read_bytes() for p in pushed.cache_files()] == [pushed.data]
    assert pushed.leftovers() == []
    assert "Traceback" not in output and "downloading it again" not in output
