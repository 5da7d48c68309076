"""How one private function of DVC / dvc-objects is wrapped: once, marked, checked, loud.

A `Hook` names its target (`module` + `name`), the parameters the wrapper relies on, how to build
the wrapper around DVC's function, and what stops working without it. `install` then:

- finds the target; a target that is already one of our wrappers (a second call, or a reload of
  this package) is unwrapped first, so the new wrapper always wraps DVC's own function: never a
  wrapper of a wrapper, never a wrapper that calls itself;
- checks DVC's function with `inspect.signature` against the parameters the wrapper passes;
  a missing target or a changed signature leaves DVC's function as it is (DVC's own behaviour
  beats a call with the wrong arguments) and is reported;
- marks the wrapper: `dvc_dropbox_hook` names the target, `__wrapped__` is DVC's function
  (`inspect.signature` and `help()` on the wrapper show DVC's parameters);
- rebinds import-time copies: a module that ran `from dvc_objects.fs.generic import transfer`
  before the hook went in (dvc-data's `index.checkout`, which worktree remotes push through)
  holds DVC's function under its own name, which the target's new value never reaches.

`warn` says, once per problem and process, which DVC / dvc-objects versions are installed, what
changed, and what does not work because of it.
"""

from __future__ import annotations

import importlib
import inspect
import logging
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Callable, Optional

logger = logging.getLogger("dvc.dvc_dropbox")

MARK = "dvc_dropbox_hook"  # on each wrapper: "module.name" of its target
# Where import-time copies of a target can be: DVC and its libraries (not this plugin).
_COPY_HOLDERS = ("dvc", "dvc_data", "dvc_objects")

Function = Callable[..., Any]

_POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
_BY_NAME = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)


@dataclass(frozen=True)
class Hook:
    module: str
    name: str
    # The leading parameters the wrapper passes by position, in their order...
    positional: tuple[str, ...]
    # ... and those it passes (or reads) by name.
    keywords: tuple[str, ...]
    wrap: Callable[[Function], Function]
    # What does not work when DVC's function stays unwrapped (completes "... so <without>").
    without: str

    @property
    def target(self) -> str:
        return f"{self.module}.{self.name}"


def is_hook(function: Any) -> bool:
    return isinstance(getattr(function, MARK, None), str)


def original(function: Function) -> Function:
    """DVC's own function behind one of our wrappers (any other function is itself)."""
    return function.__wrapped__ if is_hook(function) else function  # type: ignore[attr-defined]


def signature_problem(function: Function, hook: Hook) -> Optional[str]:
    """What in `function`'s signature the wrapper of `hook` cannot rely on (None: all of it)."""
    try:
        parameters = list(inspect.signature(function).parameters.values())
    except (TypeError, ValueError):
        return "has no signature to check"
    leading = tuple(p.name for p in parameters if p.kind in _POSITIONAL)[: len(hook.positional)]
    if leading != hook.positional:
        return f"takes ({', '.join(leading)}, ...) first, not ({', '.join(hook.positional)}, ...)"
    named = {p.name for p in parameters if p.kind in _BY_NAME}
    missing = [name for name in hook.keywords if name not in named]
    if missing:
        return "has no parameter " + ", ".join(repr(name) for name in missing)
    return None


def install(hook: Hook) -> Optional[str]:
    """Wrap `hook`'s target (see the module docstring); the problem if it could not be."""
    try:
        module = importlib.import_module(hook.module)
    except ImportError:
        return f"{hook.target} is missing (no module {hook.module})"
    current = getattr(module, hook.name, None)
    if current is None or not callable(current):
        return f"{hook.target} is missing"
    dvc_function = original(current)
    problem = signature_problem(dvc_function, hook)
    if problem is not None:
        if current is not dvc_function:  # ours from before: not on a function it no longer fits
            setattr(module, hook.name, dvc_function)
        return f"{hook.target} {problem}"
    wrapper = hook.wrap(dvc_function)
    wrapper.__wrapped__ = dvc_function  # type: ignore[attr-defined]
    setattr(wrapper, MARK, hook.target)
    setattr(module, hook.name, wrapper)
    rebind_copies({id(dvc_function), id(current)}, wrapper, skip=module)
    return None


def rebind_copies(old: set[int], wrapper: Function, skip: ModuleType) -> None:
    """Point every name in DVC's loaded modules that holds one of `old` (by id) at `wrapper`."""
    for name, module in list(sys.modules.items()):
        if module is skip or module is None or name.split(".", 1)[0] not in _COPY_HOLDERS:
            continue
        namespace = getattr(module, "__dict__", None)
        if not isinstance(namespace, dict):
            continue
        for attr, value in list(namespace.items()):
            if id(value) in old and callable(value):
                namespace[attr] = wrapper
                logger.debug("dvc-dropbox: %s.%s now reaches its hook", name, attr)


def installed_versions() -> str:
    from importlib.metadata import PackageNotFoundError, version

    found = []
    for label, distribution in (("DVC", "dvc"), ("dvc-objects", "dvc-objects")):
        try:
            found.append(f"{label} {version(distribution)}")
        except PackageNotFoundError:
            found.append(f"{label} (not installed)")
    return ", ".join(found)


# One warning per problem and process, also across a reload of this module.
_warned: set[str] = globals().get("_warned", set())


def warn(problems: Iterable[tuple[Hook, str]]) -> None:
    """One loud WARNING for the problems not reported yet in this process."""
    new = [(hook, problem) for hook, problem in problems if problem not in _warned]
    if not new:
        return
    _warned.update(problem for _, problem in new)
    lines = "".join(f"\n  - {problem}, so {hook.without}" for hook, problem in new)
    logger.warning(
        "dvc-dropbox does not know this DVC (%s): DVC internals it relies on changed:%s\n"
        "Dropbox transfers still work, without the above. To fix it, install the dvc-objects "
        "dvc-dropbox is tested with (pip install 'dvc-objects<6') or a dvc-dropbox release made "
        "for this DVC.",
        installed_versions(),
        lines,
    )
