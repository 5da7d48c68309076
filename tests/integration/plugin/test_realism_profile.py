"""The plugin holds up under Dropbox's bad days (issue 10 item 7, issue 11 items 1 and 5).

The real `dvc` pushes, pulls and garbage-collects a few hundred small files and one multi-chunk
file against an emulator with the Dropbox realism profile (`--profile dropbox`: per-entry and
per-call contention with 15-300 s waits, too_many_requests with 15-30 s waits, plain-text 429s,
`in_progress` jobs, slow commits, per-token and per-namespace rate limits) at a time scale of
0.01, so Dropbox's waits take a hundredth of their time while the proportions stay. Only three
values differ from the profile, each harsher: the time scale, the share of plain-text 429s (0.2 ->
0.5, so that some surely happen) and the namespace's commit budget (4 -> 0.5 commits/s). The
plugin commits one batch at a time, about one a second at this size, so the profile's budget is
never met and its commits never collide: at 0.5/s every other batch loses the namespace, and its
entries fail one by one inside a successful finish_batch_v2 result, as they do on Dropbox.
"""

from __future__ import annotations

import json
import math
import random
import re
import time
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.emulator import EmulatorProcess, sdk_client
from tests.integration.plugin.cli import dvc, make_repo, md5_object, run

SMALL_FILES = 200
BIG_SIZE = 10 * 1024 * 1024 + 12345  # three 4 MiB chunks, the last one partial
SEED = "1234"
FOLDER = "/dvc/realism"


def write_data(repo: Path) -> dict[str, bytes]:
    rng = random.Random(7)
    contents: dict[str, bytes] = {}
    for i in range(SMALL_FILES):
        contents[f"data/small/{i:03}.bin"] = rng.randbytes(rng.randint(1, 2048))
    contents["data/big.bin"] = rng.randbytes(BIG_SIZE)
    for name, content in contents.items():
        path = repo / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    return contents


def remote_listing(dbx: Any) -> set[str]:
    """Every file below FOLDER (relative), listed through the SDK, waiting out 429s as asked."""
    from dropbox import exceptions, files

    for _ in range(50):
        try:
            result = dbx.files_list_folder(FOLDER, recursive=True, limit=2000)
            entries = list(result.entries)
            while result.has_more:
                result = dbx.files_list_folder_continue(result.cursor)
                entries.extend(result.entries)
            prefix = FOLDER + "/"
            return {
                e.path_lower[len(prefix) :] for e in entries if isinstance(e, files.FileMetadata)
            }
        except exceptions.RateLimitError as exc:
            time.sleep(float(exc.backoff or 1))
    raise AssertionError("the emulator kept answering 429 to list_folder")


def dir_object(repo: Path) -> str:
    """The remote object of the `.dir` listing `data.dvc` names."""
    text = (repo / "data.dvc").read_text()
    md5 = next(line.split(":", 1)[1].strip() for line in text.splitlines() if "md5:" in line)
    return f"files/md5/{md5[:2]}/{md5[2:]}"


def slow_down_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if "Dropbox asked to slow down" in line]


@pytest.mark.realism
def test_push_pull_gc_under_the_dropbox_profile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    args = ("--profile", "dropbox", "--time-scale", "0.01", "--seed", SEED)
    harsher = ("--plain-text-429-share", "0.5", "--namespace-commits-per-s", "0.5")
    with EmulatorProcess(*args, *harsher, echo_stderr=False) as emu:
        env = emu.isolated_env(tmp_path / "home", emu.token())
        repo = make_repo(tmp_path / "repo", env)
        contents = write_data(repo)
        dvc(repo, env, "remote", "add", "-d", "r", f"dropbox:/{FOLDER}")
        dvc(repo, env, "remote", "modify", "r", "chunk_size", "4")
        dvc(repo, env, "add", "data")

        push = dvc(repo, env, "push", "-v")
        output = push.stdout + push.stderr
        stats = emu.stats()["requests"]
        # Each file's bytes went up once: entries refused by contention were committed again
        # from their finished sessions, never uploaded again. The emulator counts every request,
        # the ones it refused with a 429 too; the plugin's debug log names each refused call.
        # Small files go up in packs (append_batch), the big file and the .dir listing in
        # sessions of their own.
        refused = output.count("DEBUG: Dropbox call files_upload_session_start: ")
        accepted = stats.get("files/upload_session/start", 0) - refused
        assert accepted == 1 + 1, (stats, refused)
        refused = output.count("DEBUG: Dropbox call files_upload_session_append_batch: ")
        packs = stats.get("files/upload_session/append_batch", 0) - refused
        assert 1 <= packs <= math.ceil(SMALL_FILES / 500), (stats, refused)
        assert "append_batch entry" not in output  # no file was sent twice
        assert "upload session for" not in output  # no session was lost and started again
        assert stats.get("files/upload_session/append_v2", 0) >= 2  # the big file's chunks
        realism = emu.control("GET", "realism")["counts"]
        # Packs leave the push few requests to refuse: the 429 storm is the pull's (below).
        # Entries refused inside successful batch results; the accepted starts above show they
        # were committed again from their sessions, not uploaded again.
        assert realism["entry_contention"] >= 1, realism
        assert realism["early_retries"] == 0, emu.control("GET", "realism")["early_retry_routes"]
        # One line per wait episode, not one per refused file or retry.
        lines = slow_down_lines(output)
        assert len(lines) < realism["rate_limited"] + realism["contention"], lines
        assert all(a != b for a, b in zip(lines, lines[1:])), lines

        run(["git", "add", "-A"], repo, env)
        run(["git", "-c", "user.name=t", "-c", "user.email=t@e", "commit", "-qm", "d"], repo, env)
        expected = {md5_object(c) for c in contents.values()} | {dir_object(repo)}
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", emu.ca_bundle)
        dbx = sdk_client(emu)
        assert remote_listing(dbx) == expected

        # A fresh clone pulls every object back, byte for byte.
        clone = tmp_path / "clone"
        run(["git", "clone", "-q", str(repo), str(clone)], tmp_path, env)
        pull = dvc(clone, env, "pull", "-v")
        for name, content in contents.items():
            assert (clone / name).read_bytes() == content, name
        realism = emu.control("GET", "realism")["counts"]
        assert realism["rate_limited"] >= 10, realism  # the harsh parts did happen
        # Plain-text 429s (the SDK's RateLimitError without an error) were met and waited out.
        pulled = pull.stdout + pull.stderr
        assert re.search(r"RateLimitError\('[0-9a-f]+', None, [0-9]+\)", pulled), pulled[-3000:]

        # Drop half of the small files, push the new version, collect the rest: the old objects
        # go through delete_batch jobs (in_progress for a while, entries refused by contention).
        for i in range(0, SMALL_FILES, 2):
            name = f"data/small/{i:03}.bin"
            (repo / name).unlink()
            del contents[name]
        dvc(repo, env, "add", "data")
        dvc(repo, env, "push")
        gc = dvc(repo, env, "gc", "-c", "-w", "-f", "-v")
        # delete_batch jobs stayed in_progress for a while and were polled until they finished.
        assert "in progress, checking again" in gc.stdout + gc.stderr
        kept = {md5_object(c) for c in contents.values()} | {dir_object(repo)}
        assert remote_listing(dbx) == kept
        status = dvc(repo, env, "status", "-c", "--json")
        assert json.loads(status.stdout or "{}") == {}

        # No refused request was sent again before the wait it was told was over (requests of
        # other threads already on their way are refused, not counted: see
        # dropbox_emulator.control.profile.Cooldowns).
        realism = emu.control("GET", "realism")["counts"]
        assert realism["early_retries"] == 0, emu.control("GET", "realism")["early_retry_routes"]
