"""The package is layers, not a web: an `ast` walk over every import in edgefit/ (those inside functions included)
finds no import cycle, and nothing outside edgefit/cli imports the CLI (the library never needs it)."""
import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "edgefit"
ENTRY_POINTS = {"edgefit.__main__"}  # `python -m edgefit` is the command line itself


def _modules() -> dict[str, Path]:
    out = {}
    for p in PACKAGE.rglob("*.py"):
        parts = p.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = p
    return out


def _targets(module: str, path: Path, node, modules: dict) -> list[str]:
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    base = package.split(".")[: len(package.split(".")) - (node.level - 1)] if node.level else []
    target = ".".join(base + ([node.module] if node.module else [])) if node.level else (node.module or "")
    return [f"{target}.{a.name}" if f"{target}.{a.name}" in modules else target for a in node.names]


def import_graph() -> dict[str, set[str]]:
    """{module: the edgefit modules it imports}, wherever in the module the import statement is."""
    modules = _modules()
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for m, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                graph[m] |= {t for t in _targets(m, path, node, modules) if t in modules and t != m}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_cycles():
    graph = import_graph()
    assert len(graph) > 50 and graph["edgefit.costs"]  # the walk sees the package
    assert cycles(graph) == []


def test_the_library_never_imports_the_cli():
    graph = import_graph()
    offenders = sorted((m, t) for m, ts in graph.items() for t in ts
                       if t.startswith("edgefit.cli") and not m.startswith("edgefit.cli") and m not in ENTRY_POINTS)
    assert offenders == []


def test_the_walk_finds_a_planted_cycle(tmp_path, monkeypatch):
    """The checker itself: two modules importing each other inside functions form a cycle it reports."""
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]
