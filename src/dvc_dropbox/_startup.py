"""Teach every Python process that has DVC about `dropbox://`, at no start-up cost.

DVC 3.x has no plugin hook, so `dvc_dropbox.pth` (and its PEP 829 twin `dvc_dropbox.start`)
call `install()`, which puts a tiny finder on `sys.meta_path`. The finder ignores every module
except the two DVC modules we patch, and patches each right after it executes.

This runs in *every* interpreter start (pip's too), so it imports nothing: `importlib.abc` alone
drags in pathlib, re, tempfile and typing (~50 ms). Finders and loaders are duck-typed instead,
and annotations are strings so that neither `typing` nor `__future__` is imported.
"""

import sys

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only; `typing` is not imported at run time
    from collections.abc import Sequence
    from importlib.machinery import ModuleSpec
    from types import ModuleType
    from typing import Any, Callable, Optional

_TARGETS = {
    "dvc_objects.fs": "register_fs",
    "dvc.config_schema": "register_schema",
}


def _patch(module: "ModuleType") -> None:
    try:
        from dvc_dropbox import _register

        getattr(_register, _TARGETS[module.__name__])(module)
    except Exception as exc:  # a broken plugin must never break DVC itself
        import warnings

        warnings.warn(f"dvc-dropbox could not register with DVC: {exc!r}", stacklevel=2)


class _ChainedLoader:
    """Runs the real loader, then our patch; the module keeps the real loader."""

    def __init__(self, loader: "Any", after: "Callable[[ModuleType], None]"):
        self._loader = loader
        self._after = after

    def create_module(self, spec: "ModuleSpec") -> "Optional[ModuleType]":
        return self._loader.create_module(spec)

    def exec_module(self, module: "ModuleType") -> None:
        # Give the module its real loader back so nothing downstream sees our wrapper.
        module.__loader__ = self._loader
        if module.__spec__ is not None:
            module.__spec__.loader = self._loader
        self._loader.exec_module(module)
        # The module has run to its end; Python flags it "initializing" until we return, so an
        # AttributeError from the patch reads "partially initialized module ... circular import"
        # with no circular import at all (DVC < 3.64 simply lacked REMOTE_SCHEMAS).
        self._after(module)


class _Finder:
    dvc_dropbox_hook = True

    def __init__(self) -> None:
        # Guards against recursion when another plugin's finder also delegates to sys.meta_path.
        self._busy: set[str] = set()

    def find_spec(
        self,
        fullname: str,
        path: "Optional[Sequence[str]]",
        target: "Optional[ModuleType]" = None,
    ) -> "Optional[ModuleSpec]":
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
        if spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        # Duck-typed on purpose: subclassing importlib.abc.Loader costs ~50 ms per Python start.
        spec.loader = _ChainedLoader(spec.loader, _patch)  # type: ignore[assignment]
        return spec

    def invalidate_caches(self) -> None:
        pass


def install() -> None:
    """Install the hook once; patch right away whatever DVC already imported (late install)."""
    if not any(getattr(f, "dvc_dropbox_hook", False) for f in sys.meta_path):
        sys.meta_path.insert(0, _Finder())
    for name in _TARGETS:
        module = sys.modules.get(name)
        if module is not None:
            _patch(module)
