"""design.md's import rules, executable: which room may import which.

Imports are read from the source (ast), not by importing, so a rule is checked even for code that
only runs on some paths. "At start-up" means the module body outside functions and outside
`if TYPE_CHECKING:` blocks; lazy imports inside functions are how the start-up modules stay cheap.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src"

# Plugin modules that run in every Python start (via the .pth hook) or while DVC builds its
# config schema: they may import only the standard library and each other at start-up.
STARTUP_MODULES = ("_startup", "_register", "options", "urls")


@dataclass(frozen=True)
class Import:
    importer: str  # dotted module name of the file
    imported: str  # dotted name of what it imports
    line: int
    at_startup: bool


@dataclass(frozen=True)
class Rule:
    """Modules under `room` must not import anything under `forbidden` (at start-up, or ever)."""

    room: str
    forbidden: tuple[str, ...]
    why: str
    startup_only: bool = False


FS_ROOMS_ABOVE_BASE = ("dvc_dropbox.fs", "dvc_dropbox.fs_listing", "dvc_dropbox.fs_mutations")

RULES = (
    Rule("dvc_dropbox", ("dropbox_emulator",), "the plugin never knows the emulator"),
    Rule(
        "dvc_dropbox",
        ("dvc_dropbox.adapter",),
        "DVC imports the adapter, which hands on what others need (dvc_hooks.install): "
        "nothing imports it back",
    ),
    Rule("dropbox_emulator", ("dvc_dropbox",), "the emulator never knows the plugin"),
    Rule(
        "dropbox_emulator.state",
        (
            "dropbox_emulator.handlers",
            "dropbox_emulator.http",
            "dropbox_emulator.control",
            "dropbox_emulator.oauth",
            "dropbox_emulator.runtime",
        ),
        "state is the bottom room: it serves handlers, it never calls up",
    ),
    Rule(
        "dropbox_emulator.handlers",
        ("dropbox_emulator.http", "dropbox_emulator.runtime", "dropbox_emulator.control"),
        "route semantics never depend on the transport or the composition root",
    ),
    Rule(
        "dropbox_emulator.oauth",
        ("dropbox_emulator.http", "dropbox_emulator.runtime"),
        "OAuth pages get the runtime handed in; they do not reach for the transport",
        startup_only=True,
    ),
    Rule(
        "dropbox_emulator.control",
        ("dropbox_emulator.http", "dropbox_emulator.runtime"),
        "the control API gets the runtime handed in; it does not reach for the transport",
        startup_only=True,
    ),
    # The fsspec filesystem's rooms: the base under listing and mutations, the core (fs.py)
    # assembling them; the file objects get callables, not the filesystem.
    Rule(
        "dvc_dropbox.fs_base",
        (*FS_ROOMS_ABOVE_BASE, "dvc_dropbox.files"),
        "the filesystem's base is its bottom room: the rooms build on it, it never calls up",
    ),
    Rule(
        "dvc_dropbox.fs_listing",
        ("dvc_dropbox.fs", "dvc_dropbox.fs_mutations"),
        "listing knows only the base; the core assembles the rooms",
    ),
    Rule(
        "dvc_dropbox.fs_mutations",
        ("dvc_dropbox.fs", "dvc_dropbox.fs_listing"),
        "mutations know only the base; the core assembles the rooms",
    ),
    Rule(
        "dvc_dropbox.files",
        (*FS_ROOMS_ABOVE_BASE, "dvc_dropbox.fs_base"),
        "readers and writers get callables from the filesystem, no import circle",
    ),
)


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _deferred(node: ast.AST) -> bool:
    """Code that does not run when the module is imported: function bodies, TYPE_CHECKING."""
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
        return True
    return isinstance(node, ast.If) and _is_type_checking(node)


def imports_of(source: str, module: str, is_package: bool = False) -> Iterator[Import]:
    """Every import in `source` (the text of `module`), relative ones resolved."""
    package = module if is_package else module.rpartition(".")[0]

    def visit(node: ast.AST, at_startup: bool) -> Iterator[Import]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import):
                for alias in child.names:
                    yield Import(module, alias.name, child.lineno, at_startup)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    anchor = package.split(".")
                    anchor = anchor[: len(anchor) - (child.level - 1)]
                    base = ".".join([*anchor, base] if base else anchor)
                for alias in child.names:
                    # `from pkg import sub` may name a submodule: count both spellings.
                    yield Import(module, f"{base}.{alias.name}", child.lineno, at_startup)
            elif _deferred(child):
                yield from visit(child, False)
            else:
                yield from visit(child, at_startup)

    yield from visit(ast.parse(source), True)


def _under(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def violations(found: list[Import]) -> list[str]:
    problems = []
    for imp in found:
        for rule in RULES:
            if not _under(imp.importer, rule.room) or (rule.startup_only and not imp.at_startup):
                continue
            for forbidden in rule.forbidden:
                if _under(imp.imported, forbidden):
                    problems.append(
                        f"{imp.importer}:{imp.line} imports {imp.imported}: {rule.why}"
                    )
    return problems


def startup_violations(found: list[Import], stdlib: frozenset[str]) -> list[str]:
    allowed = {f"dvc_dropbox.{name}" for name in STARTUP_MODULES}
    problems = []
    for imp in found:
        if imp.importer not in allowed or not imp.at_startup:
            continue
        top = imp.imported.split(".")[0]
        if top in stdlib or top == "__future__":
            continue
        if any(_under(imp.imported, mod) for mod in allowed) or imp.imported == "dvc_dropbox":
            continue
        problems.append(
            f"{imp.importer}:{imp.line} imports {imp.imported} at start-up: start-up modules "
            "import only the standard library (import it inside the function that needs it)"
        )
    return problems


def all_imports() -> list[Import]:
    found: list[Import] = []
    for path in sorted(SRC.rglob("*.py")):
        found.extend(imports_of(path.read_text(), _module_name(path), path.name == "__init__.py"))
    return found


def test_rooms_import_only_downwards() -> None:
    assert violations(all_imports()) == []


@pytest.mark.skipif(
    not hasattr(sys, "stdlib_module_names"), reason="sys.stdlib_module_names needs Python 3.10"
)
def test_startup_modules_import_only_the_stdlib() -> None:
    stdlib = frozenset(sys.stdlib_module_names)  # type: ignore[attr-defined]
    assert startup_violations(all_imports(), stdlib) == []


# What users import in their CI (and benchmarks use): the launcher, and the pieces that let
# another client (rclone) reach an emulator. They talk to the emulator's process only.
USER_TOOLS = (
    "dropbox_emulator.testing",
    "dropbox_emulator.connect_proxy",
    "dropbox_emulator.rclone",
)


@pytest.mark.parametrize("module", USER_TOOLS)
def test_the_emulator_user_tools_use_no_emulator_internals(module: str) -> None:
    path = SRC / Path(*module.split(".")).with_suffix(".py")
    found = list(imports_of(path.read_text(), module))
    internal = [
        i.imported
        for i in found
        if _under(i.imported, "dropbox_emulator")
        and not any(_under(i.imported, tool) for tool in USER_TOOLS)
    ]
    assert internal == []


def test_tests_and_tools_reach_the_emulator_only_through_its_launcher() -> None:
    """Outside the emulator's own tests, the emulator is a process behind its user tools."""
    offenders = []
    for top in ("tests", "benchmarks", "scripts"):
        for path in sorted((ROOT / top).rglob("*.py")):
            folders = path.relative_to(ROOT).parts[:-1]
            if "emulator" in folders:  # the emulator's own tests may reach inside it
                continue
            for imp in imports_of(path.read_text(), path.stem):
                if _under(imp.imported, "dropbox_emulator") and not any(
                    _under(imp.imported, tool) for tool in USER_TOOLS
                ):
                    offenders.append(f"{path.relative_to(ROOT)}:{imp.line} {imp.imported}")
    assert offenders == []


# -- the checker itself can fail -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("module", "source", "expected"),
    [
        ("dvc_dropbox.fs", "from dropbox_emulator import testing\n", "plugin never knows"),
        ("dvc_dropbox.fs", "def f():\n    import dropbox_emulator.runtime\n", "plugin never knows"),
        ("dropbox_emulator.http.server", "import dvc_dropbox.fs\n", "emulator never knows"),
        ("dropbox_emulator.state.tree", "from ..handlers import files\n", "bottom room"),
        ("dropbox_emulator.handlers.files", "from ..http.wire import x\n", "transport"),
        ("dropbox_emulator.control.api", "from ..runtime import Runtime\n", "handed in"),
        ("dvc_dropbox.files", "if TYPE_CHECKING:\n    from .fs import DropboxFS\n", "callables"),
        ("dvc_dropbox.fs_listing", "from .fs_mutations import MutationsMixin\n", "assembles"),
    ],
)
def test_a_forbidden_import_is_caught(module: str, source: str, expected: str) -> None:
    problems = violations(list(imports_of(source, module)))
    assert len(problems) == 1 and expected in problems[0], problems


def test_a_type_checking_import_of_the_runtime_is_allowed() -> None:
    source = "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ..runtime import R\n"
    assert violations(list(imports_of(source, "dropbox_emulator.control.api"))) == []


def test_a_third_party_import_at_startup_is_caught() -> None:
    source = "import os\nimport dvc.config_schema\ndef later():\n    import dropbox\n"
    found = list(imports_of(source, "dvc_dropbox._register"))
    problems = startup_violations(found, frozenset({"os"}))
    assert len(problems) == 1 and "dvc.config_schema" in problems[0], problems
