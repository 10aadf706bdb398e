"""The package's shape: no import cycles (lazy imports inside functions included), no mock
patching inside the package, and one way to tell a policy about new episodes."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "distillkit"


def module_name(path: Path, package: Path) -> str:
    parts = list(path.relative_to(package.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    """module -> the package modules it imports anywhere in its body."""
    modules = {module_name(p, package): p for p in package.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module in modules:
                found.add(node.module)
                found |= {f"{node.module}.{a.name}" for a in node.names if f"{node.module}.{a.name}" in modules}
            elif isinstance(node, ast.Import):
                found |= {a.name for a in node.names if a.name in modules}
        # a module importing from its own package's __init__ is the package's business, not a cycle
        graph[name] = {m for m in found if m != name and not name.startswith(m + ".")}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while (w := stack.pop()) != v:
                on_stack.discard(w)
                component.append(w)
            on_stack.discard(v)
            if component:
                found.append(sorted([v, *component]))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def test_the_package_has_no_import_cycles():
    assert cycles(import_graph()) == []


def test_the_cycle_finder_finds_a_cycle_through_a_lazy_import(tmp_path):
    package = tmp_path / "distillkit"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from distillkit.b import g\n")
    (package / "b.py").write_text("def g():\n    from distillkit.a import f\n")
    (package / "c.py").write_text("import distillkit.a\n")
    assert cycles(import_graph(package)) == [["distillkit.a", "distillkit.b"]]


def test_no_mock_patching_and_no_duck_typed_reset_inside_the_package():
    offenders = [f"{p.relative_to(PACKAGE.parent)}: {needle}" for p in PACKAGE.rglob("*.py")
                 for needle in ("mock.patch", 'hasattr(student, "reset")', 'hasattr(policy, "reset")')
                 if needle in p.read_text()]
    assert offenders == []
