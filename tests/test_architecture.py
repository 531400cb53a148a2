"""The layers of docs/DESIGN.md, checked on the import graph (every import, function-local ones too):

    tasks.domain    pure concepts: imports no other layer, no Prefect, no database or storage library
    tasks.adapters  I/O (database, storage, meter store, MDFF formats): may import the domain
    tasks.pipeline  the month end (graph, datasets, phases): may import domain and adapters
    tasks.companion the companion flows' work: may import domain and adapters
    flows           Prefect flows and the CLI: may import everything above
(tasks.settings and the pure tasks.redact may be imported by every layer but the domain)
and no module imports, directly or through others, a module that imports it back (no circles)."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("tasks", "flows", "sql", "deployments")
LAYER_ORDER = ["tasks.domain", "tasks.adapters", "tasks.pipeline", "tasks.companion", "flows"]
SHARED = {"tasks.settings", "tasks.redact", "sql"}  # tasks.redact: pure, removes credentials from text
ALLOWED = {
    "tasks.domain": {"tasks.domain"},
    "tasks.adapters": {"tasks.domain", "tasks.adapters", *SHARED},
    "tasks.pipeline": {"tasks.domain", "tasks.adapters", "tasks.pipeline", *SHARED},
    "tasks.companion": {"tasks.domain", "tasks.adapters", "tasks.companion", *SHARED},
}
FORBIDDEN_IN_DOMAIN = ("prefect", "sqlalchemy", "boto3", "s3fs", "connectorx", "adbc_driver_manager", "httpx")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {
        module_name(path): path
        for pkg in PACKAGES
        for path in (REPO / pkg).rglob("*.py")
        if "migrations" not in path.parts
    }


def imports() -> dict[str, set[str]]:
    """Every project module → the modules it imports (anywhere in it). ``from pkg import sub`` of a
    submodule is an edge to the submodule only (its package's __init__ is not a design dependency)."""
    modules = _modules()
    out: dict[str, set[str]] = defaultdict(set)
    for name, path in modules.items():
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                out[name].update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                subs = {f"{node.module}.{a.name}" for a in node.names} & set(modules)
                out[name].update(subs)
                if len(subs) < len(node.names):
                    out[name].add(node.module)
        out.setdefault(name, set())
    return out


def project(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """Only edges between project modules (``from tasks.domain import x`` → tasks.domain.x if a module)."""
    return {m: {i for i in deps if i in graph and i != m} for m, deps in graph.items()}


def layer(module: str) -> str | None:
    return next((p for p in LAYER_ORDER if module == p or module.startswith(p + ".")), None)


def test_each_layer_imports_only_the_layers_below_it():
    graph = imports()
    wrong = []
    for module, deps in project(graph).items():
        mine = layer(module)
        if mine is None or mine == "flows":
            continue
        for dep in deps:
            theirs = layer(dep) or dep.split(".")[0] + (
                "." + dep.split(".")[1] if dep.startswith("tasks.") else ""
            )
            allowed = ALLOWED[mine]
            if not any(dep == a or dep.startswith(a + ".") for a in allowed):
                wrong.append(f"{module} imports {dep} ({theirs})")
    assert not wrong, "\n".join(sorted(wrong))


def test_the_domain_imports_no_io_and_no_prefect():
    graph = imports()
    wrong = [
        f"{m} imports {i}"
        for m, deps in graph.items()
        if layer(m) == "tasks.domain"
        for i in deps
        if i.split(".")[0] in FORBIDDEN_IN_DOMAIN
    ]
    assert not wrong, "\n".join(sorted(wrong))


def test_no_import_cycles():
    graph = project(imports())
    # collapse "package imports its own submodule via __init__" edges: a package's __init__ is a module too
    index, low, stack, on, cycles = {}, {}, [], set(), []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
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
                cycles.append(sorted(comp))

    import sys

    sys.setrecursionlimit(10000)
    for v in sorted(graph):
        if v not in index:
            visit(v)
    assert not cycles, cycles
