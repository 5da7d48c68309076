"""SDK calls that differ between dropbox 12.2 (Python >= 3.11) and 12.0/12.1 (Python 3.9/3.10)."""

from __future__ import annotations

import inspect
from typing import Any


def sdk_takes_extra_headers(client: Any) -> bool:
    return "extra_headers" in inspect.signature(client.files_download).parameters


def download_with_headers(client: Any, path: str, headers: dict[str, str]) -> Any:
    """`files_download` with extra HTTP headers (e.g. Range) on every SDK version.

    12.2 takes `extra_headers=`; older SDKs send a clone's `headers` with every request.
    """
    if sdk_takes_extra_headers(client):
        return client.files_download(path, extra_headers=headers)
    return client.clone(headers={**(client._headers or {}), **headers}).files_download(path)
