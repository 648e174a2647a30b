"""The package's import graph: no circles, no imports below code, and the core layers never import upward.

The graph is read from the source (``ast``), not from ``sys.modules``: an edge is a module-level import of another
``hf_binarize`` module (imports inside functions and under ``TYPE_CHECKING`` are deliberate late bindings and are
left out). ``from .pkg import name`` points at ``pkg.name`` when that is a module, else at ``pkg``.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "hf_binarize"

# Lower layers first: a module may import its own layer and those before it, never one after it.
LAYERS = [
    ["formats"],
    ["ops"],
    ["backends"],
    ["nn"],
    ["config", "quantize", "size"],
    ["integrations", "losses"],
]


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(path): path for path in PACKAGE.rglob("*.py")}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _module_level_imports(tree: ast.Module) -> list[ast.Import | ast.ImportFrom]:
    found = []
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.append(node)
        elif isinstance(node, (ast.If, ast.Try)) and not (isinstance(node, ast.If) and _is_type_checking(node)):
            found += [n for n in ast.walk(node) if isinstance(n, (ast.Import, ast.ImportFrom))]
    return found


def _targets(module: str, node: ast.Import | ast.ImportFrom) -> set[str]:
    if isinstance(node, ast.Import):
        return {alias.name for alias in node.names if alias.name.split(".")[0] == "hf_binarize"}
    if node.level:
        is_package = MODULES[module].name == "__init__.py"
        base = module.split(".")[: len(module.split(".")) - node.level + (1 if is_package else 0)]
        source = ".".join(base + ([node.module] if node.module else []))
    else:
        source = node.module or ""
    if source.split(".")[0] != "hf_binarize":
        return set()
    return {f"{source}.{alias.name}" if f"{source}.{alias.name}" in MODULES else source for alias in node.names}


def import_graph() -> dict[str, set[str]]:
    graph = {}
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text(), str(path))
        graph[module] = {t for node in _module_level_imports(tree) for t in _targets(module, node)} - {module}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return components


def test_cycle_finder_finds_a_planted_circle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_relative_imports_resolve():
    graph = import_graph()
    assert "hf_binarize.formats.binary" in graph["hf_binarize.ops.reference"]
    assert "hf_binarize.ops" in graph["hf_binarize.backends"] or "hf_binarize.ops.schema" in graph["hf_binarize.backends"]


def test_no_import_circles():
    assert _cycles(import_graph()) == []


def _layer(module: str) -> int | None:
    top = module.split(".")[1] if "." in module else None
    return next((i for i, names in enumerate(LAYERS) if top in names), None)


def test_core_layers_import_downward_only():
    upward = []
    for module, targets in import_graph().items():
        here = _layer(module)
        if here is None:
            continue
        for target in targets:
            there = _layer(target)
            if there is None or there > here:
                upward.append(f"{module} -> {target}")
    assert upward == []


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_come_before_code(module):
    tree = ast.parse(MODULES[module].read_text())
    seen_code = False
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            seen_code = True
        elif isinstance(node, (ast.Import, ast.ImportFrom)) and seen_code:
            pytest.fail(f"{module} imports {ast.unparse(node)!r} below its code (line {node.lineno})")


def test_import_is_lean():
    # Importing the package must not load the trainer stack, triton or the data tools, nor touch CUDA
    # (transformers' model loading imports accelerate itself, so that one is not ours to avoid).
    code = (
        "import sys, torch, hf_binarize\n"
        "heavy = ('triton', 'datasets', 'matplotlib', 'transformers.trainer', 'hf_binarize.training')\n"
        "heavy = [m for m in heavy if m in sys.modules]\n"
        "assert not heavy, heavy\n"
        "assert not torch.cuda.is_initialized()\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120, cwd=PACKAGE.parent)
