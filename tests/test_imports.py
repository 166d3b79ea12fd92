"""The project's modules import each other without a cycle: at run time, lazily inside functions, or only for types.

Every ``import`` and ``from … import`` counts, wherever it stands (module level, ``if TYPE_CHECKING:``, a function
body): a cycle that only types or a lazy import hide is still two modules that cannot be understood one without the
other. A package's ``__init__`` counts as a module of its own, reached by imports that name the package.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("server", "tools", "prompts")


def _modules() -> dict[str, Path]:
    found = {}
    for top in PACKAGES:
        for path in (ROOT / top).rglob("*.py"):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The project's modules ``name`` imports, anywhere in its text."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names if alias.name in modules)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            submodules = {f"{source}.{alias.name}" for alias in node.names} & modules.keys()
            out |= submodules
            if source in modules and len(submodules) < len(node.names):  # names from the module (or package) itself
                out.add(source)
    out.discard(name)
    return out


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
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


def test_the_import_graph_has_no_cycle() -> None:
    modules = _modules()
    graph = {name: _imports(name, path, modules) for name, path in modules.items()}
    assert len(graph) > 50, "the walk found the project's modules"
    assert _cycles(graph) == []


def test_the_cycle_finder_finds_a_cycle_through_a_type_only_import() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(graph) == [["a", "b", "c"]]
    tree = ast.parse("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from server.root import Services\n")
    assert any(isinstance(n, ast.ImportFrom) and n.module == "server.root" for n in ast.walk(tree))


def test_tools_hold_no_mechanism() -> None:
    """Tools are thin: no try/except (errors are mapped once, at the boundary in server.mcp.tooling), and they reach
    the engine through its packages' surfaces, not its modules."""
    for path in (ROOT / "tools").glob("*.py"):
        tree = ast.parse(path.read_text())
        assert not [n for n in ast.walk(tree) if isinstance(n, ast.Try)], f"{path.name} holds a try statement"
        deep = [
            n.module
            for n in ast.walk(tree)
            if isinstance(n, ast.ImportFrom) and n.module and n.module.startswith("server.") and n.module.count(".") > 1
        ]
        assert not deep, f"{path.name} imports modules inside server's packages: {deep}"


_SERVING = """
import json, sys
import mcp.server.mcpserver
before = set(sys.modules)
import server.cli, server.transport.stdio
from server.settings import Settings
from server.mcp.assembly import build_server
build_server(Settings())
print(json.dumps(sorted(set(sys.modules) - before)))
"""
"""Prints the modules that serving stdio imports beyond what the SDK's server imports by itself."""

NEON_ONLY = ("tools.branches", "tools.computes", "tools.neon_info", "tools.roles", "server.neon", "server.computes")
NOT_FOR_STDIO = (
    *("asyncpg", "pglast", "server.local_neon"),
    *("httpx2", "httpcore2", "uvicorn", "starlette", "sse_starlette", "mcp.client", "server.transport.http"),
)
"""Heavy, or the HTTP stack and the SDK's client side: the SDK imports some of them itself; we add none."""


@pytest.mark.parametrize("configured", ["a database URL", "Neon"])
def test_starting_to_serve_stdio_imports_only_what_it_needs(configured: str, tmp_path: Path) -> None:
    """The first start builds every tool it offers (and writes the catalog); the next imports no tool at all."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NEON_", "DATABASE_URL"))}
    env["NEON_MCP_HOME"] = str(tmp_path)
    env["NEON_MCP_CACHE_DIR"] = str(tmp_path / "cache")
    if configured == "Neon":
        env.update(NEON_API_KEY="napi_test", NEON_API_HOST="http://127.0.0.1:9/api/v2")
    else:
        env["DATABASE_URL"] = "postgresql://u@127.0.0.1:9/db"

    def start() -> list[str]:
        completed = subprocess.run(
            [sys.executable, "-c", _SERVING], env=env, capture_output=True, text=True, check=True, timeout=120
        )
        added: list[str] = json.loads(completed.stdout)
        assert [m for m in added if m.startswith(NOT_FOR_STDIO)] == []
        return added

    first = start()
    assert ("tools.branches" in first) == (configured == "Neon")
    assert ("tools.sql" in first) and ("server.sql" in first)
    if configured != "Neon":
        assert [m for m in first if m.startswith(NEON_ONLY)] == [], "a plain database URL imports nothing of Neon"
    assert list((tmp_path / "cache").glob("tools-*.json"))
    again = start()
    assert [m for m in again if m.startswith(("tools.", "server.sql", *NEON_ONLY))] == [], "the catalog was not used"


def test_every_confirmable_tool_names_its_family() -> None:
    """confirm_operation names the tools it replays rather than importing them (a server without Neon never imports
    Neon's families): each name resolves to the tool of that name."""
    from tools.confirm import CONFIRMABLE

    for name, family in CONFIRMABLE.items():
        fn = getattr(importlib.import_module(f"tools.{family}"), name)
        assert fn.__name__ == name and inspect.iscoroutinefunction(fn)
