"""Everything under tests/unit is pure logic: no emulator, no subprocess, no network.

Marked `unit` here, so `python3 dev.py test -m unit` is the seconds-long inner loop.
"""

from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.unit)
