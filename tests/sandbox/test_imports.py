"""No import cycles among the sandbox, shared and functions modules, lazy and type-checking imports included."""

from __future__ import annotations

import ast
from collections.abc import Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CHECKED_PACKAGES = ("sandbox", "shared", "functions")


def module_name(path: Path, root: Path) -> str:
    """`sandbox/graph/state.py` → `sandbox.graph.state`; a package's `__init__.py` is the package."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules_under(root: Path, packages: Iterable[str]) -> dict[str, Path]:
    """Every module of the given top-level packages, by dotted name."""
    return {module_name(path, root): path
            for package in packages for path in sorted((root / package).rglob("*.py"))}


def imported_modules(name: str, path: Path, known: set[str]) -> set[str]:
    """The known modules this one imports anywhere in its code (top level, in functions, under TYPE_CHECKING)."""
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = name.split(".")[: len(name.split(".")) - node.level + (1 if is_package else 0)]
                base = ".".join([*anchor, base] if base else anchor)
            # `from a import b` imports the module a.b when there is one, else a name of a.
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for neighbour in sorted(graph.get(node, ())):
            if neighbour not in index:
                visit(neighbour)
                low[node] = min(low[node], low[neighbour])
            elif neighbour in on_stack:
                low[node] = min(low[node], index[neighbour])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return cycles


def cycles_under(root: Path, packages: Iterable[str]) -> list[list[str]]:
    """Import cycles among the modules of the given packages."""
    modules = modules_under(root, packages)
    known = set(modules)
    return import_cycles({name: imported_modules(name, path, known) for name, path in modules.items()})


def test_sandbox_shared_and_functions_have_no_import_cycles() -> None:
    cycles = cycles_under(ROOT, CHECKED_PACKAGES)

    assert cycles == [], "import cycles (move the shared piece into a module both can import):\n" + "\n".join(
        " <-> ".join(cycle) for cycle in cycles)


def test_a_cycle_through_a_type_checking_import_is_found(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "state.py").write_text("from pkg.seed import seed\n")
    (package / "seed.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.state import State\n")
    (package / "app.py").write_text("from . import state\n")

    assert cycles_under(tmp_path, ["pkg"]) == [["pkg.seed", "pkg.state"]]


def test_a_cycle_through_a_function_level_relative_import_is_found(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "__init__.py").write_text("from .worker import work\n")
    (package / "sub" / "worker.py").write_text("def work():\n    from ..run import main\n    return main\n")
    (package / "run.py").write_text("import pkg.sub\n\ndef main():\n    return pkg.sub\n")

    assert cycles_under(tmp_path, ["pkg"]) == [["pkg.run", "pkg.sub", "pkg.sub.worker"]]


def test_a_package_importing_its_own_modules_is_no_cycle(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("from pkg.app import build\nfrom pkg.state import State\n")
    (package / "state.py").write_text("State = object\n")
    (package / "app.py").write_text("from pkg.state import State\n\ndef build():\n    return State\n")

    assert cycles_under(tmp_path, ["pkg"]) == []
