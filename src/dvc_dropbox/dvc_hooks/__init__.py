"""Every wrapper of a DVC / dvc-objects private, installed here and only here (design.md 19).

DVC 3 has no hook for what a remote needs from a transfer, so dvc-dropbox wraps these functions
of `dvc_objects.fs.generic` (each wrapper: dvc_hooks/generic.py):

- `transfer`: towards Dropbox the whole list goes to `_put` at once (no link attempts), and a
  transfer with Dropbox on one side stops at a cause every file meets (transfer/fatal.py);
- `_put`: `dvc push` in batches that fill (dvc_put.py);
- `_get`: downloads straight into place, a failed file reported, not fatal (dvc_get.py).

What stops working when a hook cannot go in is each `Hook.without`, said in the warning.

`adapter.py` calls `install` as its last statement, handing in its class test, so nothing here
imports the adapter back. `install` can run any number of times (and after a reload of this
package): each target ends up wrapped exactly once, around DVC's own function (hooking.py).

Not here: the two registration patches (`_register.py`), which must be in place while DVC
imports itself, long before DVC imports the adapter, from the stdlib-only start-up hook.
"""

from __future__ import annotations

from typing import Any, Callable

from . import generic
from .hooking import MARK, Hook, is_hook, original, warn
from .hooking import install as install_hook

GENERIC = "dvc_objects.fs.generic"


def hooks(is_dropbox: Callable[[Any], bool]) -> tuple[Hook, ...]:
    """The hooks, their wrappers built around `is_dropbox` (the adapter's class test)."""
    return (
        Hook(
            GENERIC,
            "transfer",
            generic.TRANSFER_POSITIONAL,
            generic.TRANSFER_KEYWORDS,
            lambda dvc_function: generic.wrap_transfer(dvc_function, is_dropbox),
            without="a cause every file meets (a full Dropbox, a revoked token) fails each file "
            "instead of stopping the transfer with one message naming it, and each push uploads "
            "its first file alone",
        ),
        Hook(
            GENERIC,
            "_put",
            generic.PUT_POSITIONAL,
            generic.COPY_KEYWORDS,
            lambda dvc_function: generic.wrap_put(dvc_function, is_dropbox),
            without="dvc push commits at most -j files per batch (much slower for many files)",
        ),
        Hook(
            GENERIC,
            "_get",
            generic.GET_POSITIONAL,
            generic.COPY_KEYWORDS,
            lambda dvc_function: generic.wrap_get(dvc_function, is_dropbox),
            without="a file that fails to download ends dvc pull/fetch with an unexpected error "
            "(not one reported file), and a pull without -j runs the local cache's number of "
            "jobs, not the remote's",
        ),
    )


def install(is_dropbox: Callable[[Any], bool]) -> list[str]:
    """Install every hook (once each); warn once about those that could not be. Returns the
    problems (empty when all are in place)."""
    problems = []
    for hook in hooks(is_dropbox):
        problem = install_hook(hook)
        if problem is not None:
            problems.append((hook, problem))
    warn(problems)
    return [problem for _, problem in problems]


__all__ = ["GENERIC", "MARK", "Hook", "hooks", "install", "is_hook", "original"]
