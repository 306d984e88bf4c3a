"""The layout rules every landing keeps: short modules, no import cycle, one direction of imports.

Imports are read with :mod:`ast`, so an import inside a function or under
``TYPE_CHECKING`` counts as much as one at the top of a module.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("tracker", "collectors")
MAX_LINES = 350
MAX_TOP_LEVEL = 10


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


MODULES = _modules()


def _imports(name: str, path: Path) -> set[str]:
    """Every project module ``name`` imports, wherever the import statement stands."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            targets.add(base)
            targets.update(f"{base}.{alias.name}" for alias in node.names)
    return {t for t in targets if t in MODULES and t != name}


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


@pytest.mark.parametrize("name", sorted(MODULES))
def test_module_is_short(name):
    lines = len(MODULES[name].read_text().splitlines())
    assert lines <= MAX_LINES, f"{MODULES[name].relative_to(ROOT)} has {lines} lines"


def test_no_import_cycle():
    cycles = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(GRAPH[node]):
            # A package's __init__ importing its own submodule, and that submodule
            # importing a sibling through the package, is how Python packages work.
            if nxt.startswith(node + ".") or node.startswith(nxt + "."):
                continue
            if state.get(nxt) == 1:
                cycles.append(" -> ".join([*trail[trail.index(nxt) :], nxt]))
            elif nxt not in state:
                visit(nxt, [*trail, nxt])
        state[node] = 2

    for name in sorted(GRAPH):
        if name not in state:
            visit(name, [name])
    assert cycles == []


def test_at_most_ten_top_level_modules():
    top = sorted(p.name for p in (ROOT / "tracker").glob("*.py"))
    assert len(top) <= MAX_TOP_LEVEL, top


def test_tracker_imports_from_the_defining_module():
    """Inside ``tracker/`` nothing goes through the package's re-exports."""
    offenders = []
    for name, path in MODULES.items():
        if not name.startswith("tracker"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module == "tracker" and not node.level:
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert offenders == []


def test_core_never_imports_a_collector():
    offenders = sorted(
        f"{name} -> {target}"
        for name, targets in GRAPH.items()
        if name.startswith("tracker")
        for target in targets
        if target.startswith("collectors")
    )
    assert offenders == []


def test_collectors_import_only_the_plugin_api():
    """A built-in collector uses what a third-party plugin may use, nothing more."""
    public = ("tracker.event", "tracker.plugins", "tracker.metrics", "tracker.spool")
    offenders = sorted(
        f"{name} -> {target}"
        for name, targets in GRAPH.items()
        if name.startswith("collectors")
        for target in targets
        if target.startswith("tracker") and target != "tracker" and not target.startswith(public)
    )
    assert offenders == []
