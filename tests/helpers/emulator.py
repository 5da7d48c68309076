"""The project's tests use the supported launcher, `dropbox_emulator.testing`, like users' CI does.

`EmulatorProcess` is `EmulatorServer` under the name these tests have always used (plus `proc`);
`sdk_client` builds an SDK client for any emulator, also one other than the session's.
"""

from __future__ import annotations

import subprocess
from typing import Any

from dropbox_emulator.testing import SDK_HOST_VARS, EmulatorServer

HOST_VARS = SDK_HOST_VARS


class EmulatorProcess(EmulatorServer):
    """One emulator process. `env` is what the SDK (or a `dvc` subprocess) needs to reach it."""

    @property
    def proc(self) -> subprocess.Popen[str]:
        return self._started()


def sdk_client(emu: EmulatorServer, **token_args: Any) -> Any:
    """An unmodified `dropbox.Dropbox` for `emu`, with a token from its control API.

    For an emulator other than the session one (the SDK froze its hosts at import), the
    client's host map is pointed at `emu`; refreshing tokens then needs the session emulator.
    """
    import dropbox

    tok = emu.token(**token_args)
    dbx = dropbox.Dropbox(
        oauth2_access_token=tok["access_token"],
        max_retries_on_rate_limit=0,
        max_retries_on_error=0,
    )
    host = emu.env["DROPBOX_API_HOST"]
    if dbx._host_map[dropbox.dropbox_client.HOST_API] != host:
        for key in list(dbx._host_map):
            dbx._host_map[key] = host
    return dbx
