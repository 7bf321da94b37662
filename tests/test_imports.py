"""The import graph of arcvdm/ has no circle: every module is parsed with `ast` (imports inside functions count,
since a deferred import still ties the two modules together), relative imports are resolved, and a depth-first
search names the first circle it meets."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "arcvdm"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _imported(node: ast.AST, module: str, is_package: bool, known: set[str]) -> set[str]:
    """The arcvdm modules one import statement loads: `from a import b` loads a.b when b is a module, else a."""
    if isinstance(node, ast.Import):
        return {alias.name for alias in node.names if alias.name in known}
    if not isinstance(node, ast.ImportFrom):
        return set()
    if node.level:  # relative: level 1 is the current package
        package = module.split(".") if is_package else module.split(".")[:-1]
        base = ".".join(package[: len(package) - node.level + 1] + ([node.module] if node.module else []))
    else:
        base = node.module or ""
    targets = {f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names}
    return targets & known


def import_graph() -> dict[str, set[str]]:
    modules = _modules()
    known = set(modules)
    graph = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(), str(path))
        is_package = path.name == "__init__.py"
        edges = set()
        for node in ast.walk(tree):
            edges |= _imported(node, name, is_package, known)
        graph[name] = edges - {name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One circle as [a, b, ..., a], or None."""
    state: dict[str, str] = {}  # "open" while on the current path, "done" once fully explored
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = "open"
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_graph_reader_resolves_imports_and_finds_a_planted_circle():
    graph = import_graph()
    # An absolute import, a deferred one inside a function and a `from package import module` all count.
    assert "arcvdm.errors" in graph["arcvdm.config"]
    assert "arcvdm.backbones" in graph["arcvdm.executors"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_relative_imports_are_resolved():
    known = {"arcvdm.x", "arcvdm.x.y", "arcvdm.z"}
    tree = ast.parse("from . import y\nfrom .. import z\nfrom ..z import f")
    found = [_imported(node, "arcvdm.x", True, known) for node in tree.body]
    assert found == [{"arcvdm.x.y"}, {"arcvdm.z"}, {"arcvdm.z"}]
    tree = ast.parse("from .y import g")
    assert _imported(tree.body[0], "arcvdm.x.w", False, known) == {"arcvdm.x.y"}


def test_arcvdm_has_no_import_circle():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import circle: " + " -> ".join(cycle)


def _reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for nxt in graph[todo.pop()] - seen:
            seen.add(nxt)
            todo.append(nxt)
    return seen


def test_pretraining_is_imported_only_by_its_commands_and_config_not_by_the_registry():
    graph = import_graph()
    importers = {m for m, edges in graph.items() if not m.startswith("arcvdm.pretrain")
                 and any(e.startswith("arcvdm.pretrain") for e in edges)}
    assert importers == {"arcvdm.cli.mini"}  # `arcvdm backbone pretrain-mini`, `vae-check`, `mini-bench`
    assert not {m for m in _reachable(graph, "arcvdm.config") if m.startswith("arcvdm.backbones")}
