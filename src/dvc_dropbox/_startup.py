"""Teach every Python process that has DVC about `dropbox://`, at no start-up cost.

DVC 3.x has no plugin hook, so `dvc_dropbox.pth` (and its PEP 829 twin `dvc_dropbox.start`)
call `install()`, which puts a tiny finder on `sys.meta_path`. The finder ignores every module
except the two DVC modules we patch, and patches each right after it executes. Stdlib only:
this runs in *every* interpreter start, including pip's.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
import warnings
from collections.abc import Sequence
from types import ModuleType
from typing import Callable, Optional

_TARGETS = {
    "dvc_objects.fs": "register_fs",
    "dvc.config_schema": "register_schema",
}


def _patch(module: ModuleType) -> None:
    try:
        from dvc_dropbox import _register

        getattr(_register, _TARGETS[module.__name__])(module)
    except Exception as exc:  # a broken plugin must never break DVC itself
        warnings.warn(f"dvc-dropbox could not register with DVC: {exc!r}", stacklevel=2)


class _ChainedLoader(importlib.abc.Loader):
    def __init__(self, loader: importlib.abc.Loader, after: Callable[[ModuleType], None]):
        self._loader = loader
        self._after = after

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> Optional[ModuleType]:
        return self._loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        # Give the module its real loader back so nothing downstream sees our wrapper.
        module.__loader__ = self._loader
        if module.__spec__ is not None:
            module.__spec__.loader = self._loader
        self._loader.exec_module(module)
        self._after(module)


class _Finder(importlib.abc.MetaPathFinder):
    dvc_dropbox_hook = True

    def __init__(self) -> None:
        # Guards against recursion when another plugin's finder also delegates to sys.meta_path.
        self._busy: set[str] = set()

    def find_spec(
        self,
        fullname: str,
        path: Optional[Sequence[str]],
        target: Optional[ModuleType] = None,
    ) -> Optional[importlib.machinery.ModuleSpec]:
        if fullname not in _TARGETS or fullname in self._busy:
            return None
        self._busy.add(fullname)
        try:
            for finder in sys.meta_path:
                if finder is self or not hasattr(finder, "find_spec"):
                    continue
                spec = finder.find_spec(fullname, path, target)
                if spec is not None:
                    break
            else:
                return None
        finally:
            self._busy.discard(fullname)
        if spec.loader is None:
            return spec
        spec.loader = _ChainedLoader(spec.loader, _patch)
        return spec


def install() -> None:
    """Install the hook once; patch right away whatever DVC already imported (late install)."""
    if not any(getattr(f, "dvc_dropbox_hook", False) for f in sys.meta_path):
        sys.meta_path.insert(0, _Finder())
    for name in _TARGETS:
        module = sys.modules.get(name)
        if module is not None:
            _patch(module)
