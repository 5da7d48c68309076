"""finish_batch_v2 over more entries than one SQLite chunk: small (inline) and spooled one-piece
sessions, multi-piece sessions (assembled outside the chunk's transaction), failures and a path
written twice keep Dropbox's per-entry results, in the entries' order."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dropbox import files

from dropbox_emulator.handlers.uploads import _COMMIT_CHUNK
from dropbox_emulator.state.blobs import Body
from tests.unit.emulator.handler_calls import Harness, content_hash

N = 2 * _COMMIT_CHUNK + 20


def _inline(data: bytes) -> Body:
    """A body as the server keeps a small one: in memory."""
    return Body(path=None, size=len(data), content_hash=content_hash(data), data=data)


def _start(harness: Harness, data: bytes, *, close: bool, inline: bool) -> str:
    spooled = harness.body
    if inline:
        harness.body = _inline  # type: ignore[method-assign]
    try:
        arg = files.UploadSessionStartArg(close=close)
        return str(harness.call("files/upload_session/start", arg, data).session_id)
    finally:
        harness.body = spooled  # type: ignore[method-assign]


def _download(harness: Harness, path: str) -> bytes:
    result = harness.call("files/download", files.DownloadArg(path=path))
    blob: Any = result.blob
    return blob if isinstance(blob, bytes) else Path(blob).read_bytes()


def test_batch_across_chunks_keeps_per_entry_results(tmp_path: Path) -> None:
    harness = Harness(tmp_path / "d")
    contents: list[bytes] = []
    entries = []
    for i in range(N):
        data = b"%d:" % i + bytes([i % 251]) * (i * 37)
        contents.append(data)
        if i % 7 == 3:  # two pieces: assembled after its chunk
            sid = _start(harness, data[:5], close=False, inline=i % 2 == 0)
            harness.call(
                "files/upload_session/append:2",
                files.UploadSessionAppendArg(cursor=files.UploadSessionCursor(sid, 5), close=True),
                data[5:],
            )
        else:
            sid = _start(harness, data, close=i != 11, inline=i % 2 == 0)
        path = "/twice.bin" if i in (3, 5) else f"/b/{i:04d}.bin"
        mode = files.WriteMode.overwrite if i == 5 else files.WriteMode.add
        entries.append(
            files.UploadSessionFinishArg(
                cursor=files.UploadSessionCursor(sid, len(data)),
                commit=files.CommitInfo(path=path, mode=mode),
            )
        )
    result = harness.call(
        "files/upload_session/finish_batch:2",
        files.UploadSessionFinishBatchArg(entries=entries),
    ).entries
    assert len(result) == N
    for i, entry in enumerate(result):
        if i == 11:  # never closed
            assert entry.get_failure().get_lookup_failed().is_not_closed()
            continue
        md = entry.get_success()
        assert md.content_hash == content_hash(contents[i]), i
        assert md.size == len(contents[i])
    # Entry 5 (overwrite) came after entry 3 (add, two pieces: prepared after its chunk).
    assert _download(harness, "/twice.bin") == contents[5]
    for i in (0, 1, 17, 24, 52, N - 1):
        assert _download(harness, f"/b/{i:04d}.bin") == contents[i], i
    assert len(harness.commits) == 1  # one namespace commit for the whole batch
