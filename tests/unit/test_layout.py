"""The shape of the source tree: layers, sizes and the rules of docs/architecture.md.

Each rule is one the redesign set; a change that breaks one fails here, not in review.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "trajops"
UNIT = Path(__file__).resolve().parent

MAX_MODULE_LINES = 400
MAX_SERVING_LINES = 3600  # the edge gained people (auth, users, keys), model moves, tracks
WEB_FRAMEWORKS = ("fastapi", "starlette")


def _modules() -> list[Path]:
    return sorted(SRC.rglob("*.py"))


def _package(path: Path) -> str:
    parts = path.relative_to(SRC).parts
    return parts[0] if len(parts) > 1 else parts[0].removesuffix(".py")


def _runtime_imports(path: Path) -> list[str]:
    """Modules ``path`` imports when it runs (``if TYPE_CHECKING:`` blocks excluded)."""
    tree = ast.parse(path.read_text())
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped.update(id(child) for stmt in node.body for child in ast.walk(stmt))
    found: list[str] = []
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append(node.module)
        elif isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
    return found


def _package_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = defaultdict(set)
    for path in _modules():
        here = _package(path)
        for module in _runtime_imports(path):
            parts = module.split(".")
            if parts[0] == "trajops" and len(parts) > 1 and parts[1] != here:
                graph[here].add(parts[1])
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one package (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_loops_between_packages() -> None:
    assert _cycles(_package_graph()) == []


def test_cycle_finder_finds_a_loop() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_web_frameworks_are_imported_only_by_the_http_edge() -> None:
    offenders = [
        f"{path.relative_to(SRC)}: {module}"
        for path in _modules()
        if _package(path) != "serving"
        for module in _runtime_imports(path)
        if module.split(".")[0] in WEB_FRAMEWORKS
    ]
    assert offenders == []


def test_the_dashboard_is_an_http_client_of_the_service() -> None:
    assert "serving" not in _package_graph()["dashboard"]


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(SRC)))
def test_modules_stay_small(path: Path) -> None:
    assert len(path.read_text().splitlines()) <= MAX_MODULE_LINES


def test_the_http_edge_stays_thin() -> None:
    lines = sum(len(p.read_text().splitlines()) for p in (SRC / "serving").rglob("*.py"))
    assert lines < MAX_SERVING_LINES


def test_no_measured_figures_in_source() -> None:
    """Docstrings state contracts; measurements live in docs/performance.md."""
    offenders = [
        str(path.relative_to(SRC))
        for path in _modules()
        if "callgrind" in path.read_text() or "µs" in path.read_text()
    ]
    assert offenders == []


def test_unit_test_folders_mirror_source_packages() -> None:
    packages = {p.name for p in SRC.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    folders = {p.name for p in UNIT.iterdir() if p.is_dir() and not p.name.startswith(("_", "."))}
    assert folders - packages <= {"deploy"}  # deploy/ holds the container and compose files
