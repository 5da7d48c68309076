"""Packs hold a bounded number of bytes (transfer/packs.py): files wait for room before they are
read, and the room comes back when their pack is answered, without a worker thread. With more
bytes under way than the budget and every worker waiting for room, the push still completes
(a file resumed after its pack needed a worker to give its bytes back: all of them waited)."""

from __future__ import annotations

import os
import threading
import uuid
from pathlib import Path
from typing import Any, Optional

from dvc_dropbox.sdk_errors import classify
from dvc_dropbox.transfer import Transfers, content_hash
from dvc_dropbox.transfer.pacer import Pacer
from dvc_dropbox.transfer.pipeline import Pipeline
from tests.helpers.emulator import EmulatorProcess

FILE_SIZE = 8 * 1024
BUDGET = 8 * FILE_SIZE  # far fewer bytes than the files under way


def test_more_bytes_than_the_budget_go_up_in_several_packs(
    emulator: EmulatorProcess, dropbox_sdk: Any, tmp_path: Path
) -> None:
    count, workers = 60, 2
    root = f"/pack-memory-{uuid.uuid4().hex[:10]}"
    items = []
    for i in range(count):
        local = tmp_path / f"f{i}"
        local.write_bytes(os.urandom(FILE_SIZE))
        items.append((str(local), f"{root}/f{i}"))
    transfers = Transfers(
        dropbox_sdk,
        Pacer(classify, max_in_flight=workers),
        chunk_size=4 << 20,
        batch_size=1000,
        jobs=workers,
    )
    packs = transfers.packs
    assert packs is not None
    packs.budget.limit = BUDGET
    packs.sender.max_weight = BUDGET // 2
    results: dict[str, Any] = {}
    errors: list[BaseException] = []

    def finish(item: tuple[str, str], result: Any, error: Optional[BaseException]) -> None:
        if error is not None:
            errors.append(error)
        results[item[0]] = result

    pipeline = Pipeline(
        lambda item: transfers.upload_file_steps(*item),
        finish,
        workers=workers,
        max_in_flight=count,
        coming=transfers.expect,
    )
    runner = threading.Thread(target=pipeline.run, args=(items,), daemon=True)
    try:
        runner.start()
        runner.join(timeout=90)
        assert not runner.is_alive(), "the push stopped: every worker waits for room in a pack"
    finally:
        transfers.close()
    assert errors == []
    assert packs.budget.most_held <= BUDGET
    assert packs.packs_sent >= count * FILE_SIZE // (BUDGET // 2)
    for local, metadata in results.items():
        assert metadata.content_hash == content_hash(Path(local).read_bytes())
    assert len(results) == count
