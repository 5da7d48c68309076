"""A pack refused as a whole before it reached any session (`length_mismatch`,
`content_hash_mismatch`) is sent again from the same still-open sessions (issue 17 item 1).

The emulator answers both as Dropbox does when the body it received is not the one announced. No
fault knob makes it lie about a body, so here the body is damaged on its way out instead: the
real SDK client's `files_upload_session_append_batch` gets the first body with one byte flipped
(or one byte short), as a broken proxy would send it. Everything else is the plugin's own
mechanism (Transfers, the pipeline, the packer) against the emulator over HTTPS.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any, Callable, Optional

import pytest

from dvc_dropbox.sdk_errors import classify
from dvc_dropbox.transfer import Transfers, content_hash
from dvc_dropbox.transfer.pacer import Pacer
from dvc_dropbox.transfer.pipeline import Pipeline
from tests.helpers.emulator import EmulatorProcess

START_BATCH = "files/upload_session/start_batch"
APPEND_BATCH = "files/upload_session/append_batch"
START = "files/upload_session/start"


def flip_one_byte(body: bytes) -> bytes:
    return body[:-1] + bytes([body[-1] ^ 0xFF])


def one_byte_short(body: bytes) -> bytes:
    return body[:-1]


def damage_first_body(client: Any, damage: Callable[[bytes], bytes]) -> None:
    real = client.files_upload_session_append_batch
    damaged = [False]

    def append_batch(f: bytes, entries: Any, content_hash: Optional[str] = None) -> Any:
        if not damaged[0]:
            damaged[0] = True
            f = damage(f)
        return real(f, entries, content_hash=content_hash)

    client.files_upload_session_append_batch = append_batch


@pytest.mark.parametrize("damage", [flip_one_byte, one_byte_short])
def test_a_pack_refused_as_a_whole_is_sent_again_from_its_sessions(
    emulator: EmulatorProcess, dropbox_sdk: Any, tmp_path: Path, damage: Callable[[bytes], bytes]
) -> None:
    count = 30
    root = f"/pack-resend-{uuid.uuid4().hex[:10]}"
    files = {}
    for i in range(count):
        local = tmp_path / f"f{i}"
        local.write_bytes(os.urandom(1000 + i))
        files[str(local)] = f"{root}/f{i}"
    damage_first_body(dropbox_sdk, damage)
    transfers = Transfers(
        dropbox_sdk, Pacer(classify, max_in_flight=4), chunk_size=4 << 20, batch_size=1000, jobs=4
    )
    results: dict[str, Any] = {}

    def finish(item: tuple[str, str], result: Any, error: Optional[BaseException]) -> None:
        assert error is None, error
        results[item[0]] = result

    before = emulator.stats()["requests"]
    try:
        pipeline = Pipeline(
            lambda item: transfers.upload_file_steps(*item),
            finish,
            workers=4,
            max_in_flight=100,
            coming=transfers.expect,
        )
        pipeline.run(list(files.items()))
    finally:
        transfers.close()
    after = emulator.stats()["requests"]

    def delta(route: str) -> int:
        return int(after.get(route, 0) - before.get(route, 0))

    assert delta(START_BATCH) == 1  # the same sessions took the pack again
    assert delta(APPEND_BATCH) == 2
    assert delta(START) == 0
    assert transfers.packs is not None and transfers.packs.packs_sent == 1
    for local, metadata in results.items():
        assert metadata.content_hash == content_hash(Path(local).read_bytes())
    assert len(results) == count
