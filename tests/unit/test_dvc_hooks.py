"""dvc_hooks: each private of DVC wrapped once, around DVC's own function, loud when it changed.

`python3 dev.py test` runs this file with the newest DVC and again with the oldest one
pyproject.toml allows (OLDEST_DVC_TESTS): each hook must fit DVC's real function at both ends.
Pure logic: DVC's real functions, local files, no emulator.
"""

from __future__ import annotations

import importlib
import inspect
import logging
import sys
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from dvc_objects.fs import generic
from dvc_objects.fs.local import LocalFileSystem

from dvc_dropbox import adapter, dvc_hooks
from dvc_dropbox.dvc_hooks import hooking

HOOKS = dvc_hooks.hooks(adapter.is_dropbox)


class Warnings(logging.Handler):
    """The WARNING records of the plugin's logger (DVC's CLI prints them as "WARNING: ...")."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture
def warnings_seen(monkeypatch: pytest.MonkeyPatch) -> Iterator[Warnings]:
    """Warnings from a clean slate (no problem reported yet in this process)."""
    monkeypatch.setattr(hooking, "_warned", set())
    handler = Warnings()
    logger = logging.getLogger("dvc.dvc_dropbox")
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)


def dvcs_own(hook: dvc_hooks.Hook) -> Any:
    """The function installed at `hook`'s target now."""
    return getattr(importlib.import_module(hook.module), hook.name)


@pytest.mark.parametrize("hook", HOOKS, ids=[hook.name for hook in HOOKS])
def test_each_hook_wraps_dvcs_real_function(hook: dvc_hooks.Hook) -> None:
    installed = dvcs_own(hook)
    assert dvc_hooks.is_hook(installed), f"{hook.target} is not wrapped ({installed!r})"
    assert getattr(installed, dvc_hooks.MARK) == hook.target
    real = installed.__wrapped__
    # DVC's own function, from its own file: not a wrapper of a wrapper.
    assert not dvc_hooks.is_hook(real)
    assert real.__module__ == hook.module and real.__name__ == hook.name
    assert Path(inspect.getfile(real)).as_posix().endswith("dvc_objects/fs/generic.py")
    # What the wrapper passes is what DVC's function takes, on this DVC.
    assert hooking.signature_problem(real, hook) is None
    assert inspect.signature(installed) == inspect.signature(real)


def test_names_bound_at_import_time_reach_the_hook(monkeypatch: pytest.MonkeyPatch) -> None:
    from dvc_data.index import checkout

    real_transfer = dvc_hooks.original(generic.transfer)
    real_put = dvc_hooks.original(generic._put)
    # As if dvc-data had run `from dvc_objects.fs.generic import transfer` before the adapter
    # was imported (what `dvc push` to a worktree remote does), and another module kept `_put`.
    monkeypatch.setattr(checkout, "transfer", real_transfer)
    other = ModuleType("dvc_data.hooks_probe")
    other.put_later = real_put  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, other.__name__, other)

    assert dvc_hooks.install(adapter.is_dropbox) == []

    assert checkout.transfer is generic.transfer and dvc_hooks.is_hook(checkout.transfer)
    assert other.put_later is generic._put  # type: ignore[attr-defined]
    assert generic.transfer.__wrapped__ is real_transfer


def copy_two_files(tmp_path: Path, name: str) -> list[str]:
    """DVC's local -> local transfer through the installed hooks (it must pass through)."""
    src, dest = tmp_path / f"{name}-src", tmp_path / f"{name}-dest"
    src.mkdir()
    dest.mkdir()
    for i in range(2):
        (src / f"f{i}").write_bytes(b"x" * (i + 1))
    errors: list[BaseException] = []
    fs = LocalFileSystem()
    generic.transfer(
        fs,
        [str(src / "f0"), str(src / "f1")],
        fs,
        [str(dest / "f0"), str(dest / "f1")],
        on_error=lambda f, t, e: errors.append(e),
    )
    generic._get(fs, [str(src / "f0")], [str(dest / "got")])
    generic._put([str(src / "f1")], fs, [str(dest / "put")])
    assert errors == []
    return sorted(p.name for p in dest.iterdir())


def test_reload_wraps_once_and_does_not_recurse(tmp_path: Path) -> None:
    real = {hook.name: dvc_hooks.original(dvcs_own(hook)) for hook in HOOKS}
    assert copy_two_files(tmp_path, "before") == ["f0", "f1", "got", "put"]

    for name in (
        "dvc_dropbox.dvc_hooks.hooking",
        "dvc_dropbox.dvc_hooks.generic",
        "dvc_dropbox.dvc_hooks",
        "dvc_dropbox.dvc_put",
        "dvc_dropbox.dvc_get",
    ):
        importlib.reload(importlib.import_module(name))
    problems = [dvc_hooks.install(adapter.is_dropbox) for _ in range(3)]

    assert problems == [[], [], []]
    for hook in HOOKS:
        installed = dvcs_own(hook)
        assert installed.__wrapped__ is real[hook.name], f"{hook.target} wraps a wrapper"
    # A wrapper that called itself would raise RecursionError here.
    assert copy_two_files(tmp_path, "after") == ["f0", "f1", "got", "put"]


def test_a_missing_target_warns_once_naming_the_versions(
    monkeypatch: pytest.MonkeyPatch, warnings_seen: Warnings
) -> None:
    monkeypatch.delattr(generic, "_get")

    first = dvc_hooks.install(adapter.is_dropbox)
    importlib.reload(hooking)  # also after a reload: once per process
    second = dvc_hooks.install(adapter.is_dropbox)

    assert first == second == ["dvc_objects.fs.generic._get is missing"]
    assert len(warnings_seen.messages) == 1, warnings_seen.messages
    message = warnings_seen.messages[0]
    for needed in (
        f"DVC {version('dvc')}",
        f"dvc-objects {version('dvc-objects')}",
        "dvc_objects.fs.generic._get is missing",
        "ends dvc pull/fetch with an unexpected error",  # what does not work because of it
        "pip install 'dvc-objects<6'",  # what to do
    ):
        assert needed in message, message
    # The others are in place all the same.
    assert dvc_hooks.is_hook(generic.transfer) and dvc_hooks.is_hook(generic._put)


def test_a_changed_signature_warns_and_leaves_dvcs_function(
    monkeypatch: pytest.MonkeyPatch, warnings_seen: Warnings
) -> None:
    def _put(from_paths: Any, to_fs: Any, to_paths: Any, callback: Any = None, jobs: Any = None):
        raise AssertionError("not called here")

    def transfer(from_fs: Any, to_fs: Any, from_path: Any, to_path: Any, **kwargs: Any) -> None:
        raise AssertionError("not called here")

    monkeypatch.setattr(generic, "_put", _put)
    monkeypatch.setattr(generic, "transfer", transfer)

    problems = dvc_hooks.install(adapter.is_dropbox)

    assert problems == [
        "dvc_objects.fs.generic.transfer takes (from_fs, to_fs, from_path, to_path, ...) first, "
        "not (from_fs, from_path, to_fs, to_path, ...)",
        "dvc_objects.fs.generic._put has no parameter 'batch_size', 'on_error'",
    ]
    # A wrapper would call these with arguments they do not take: DVC's own stay.
    assert generic._put is _put and generic.transfer is transfer
    assert len(warnings_seen.messages) == 1
    assert "dvc push commits at most -j files per batch" in warnings_seen.messages[0]
    assert "fails each file instead of stopping the transfer" in warnings_seen.messages[0]
