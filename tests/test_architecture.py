"""The layer rules of docs/architecture.md, checked on the source (every import, including the
ones inside functions): CLI -> flows -> tasks -> library; no import circles."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TOP = ("vidcolor", "tasks", "flows")
FLOW_ENTRIES = {"flows.colorize_film", "flows.colorize_archive", "flows.train_model"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def import_graph() -> dict[str, set[str]]:
    files = {module_name(p): p for top in TOP for p in (REPO / top).rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        deps: set[str] = set()
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                deps.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
                for a in node.names:  # `from pkg import module` imports the module
                    deps.add(f"{base}.{a.name}" if f"{base}.{a.name}" in files else base)
        graph[name] = deps
    return graph


GRAPH = import_graph()
OURS = set(GRAPH)


def under(module: str, *prefixes: str) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def violations(rule) -> list[str]:
    return sorted(f"{m} imports {d}" for m, deps in GRAPH.items() for d in deps if rule(m, d))


def test_the_graph_sees_the_code():
    assert {"vidcolor.run", "vidcolor.job", "vidcolor.executor.scheduler", "tasks.colorize", "flows.colorize_film"} <= OURS
    assert "vidcolor.executor.scheduler" in GRAPH["vidcolor.executor.ray_pool"]


def test_no_import_circles():
    internal = {m: {d for d in deps if d in OURS and d != m} for m, deps in GRAPH.items()}
    cycles, state = [], {}

    def visit(m, stack):
        state[m] = "open"
        stack.append(m)
        for d in sorted(internal[m]):
            if state.get(d) == "open":
                cycles.append(" -> ".join(stack[stack.index(d):] + [d]))
            elif d not in state:
                visit(d, stack)
        stack.pop()
        state[m] = "done"

    for m in sorted(internal):
        if m not in state:
            visit(m, [])
    assert cycles == []


def test_library_never_imports_prefect_tasks_or_flows():
    assert violations(lambda m, d: under(m, "vidcolor") and not under(m, "vidcolor.cli")
                      and under(d, "prefect", "tasks", "flows")) == []


def test_cli_runs_flows_and_never_reaches_into_tasks():
    assert violations(lambda m, d: under(m, "vidcolor.cli") and (under(d, "tasks") or (under(d, "flows") and d not in FLOW_ENTRIES))) == []


def test_ray_only_in_the_executor():
    assert violations(lambda m, d: under(d, "ray") and not under(m, "vidcolor.executor")) == []


def test_tasks_do_not_import_flows_and_flows_only_compose():
    assert violations(lambda m, d: under(m, "tasks") and under(d, "flows")) == []
    assert violations(lambda m, d: under(m, "flows") and under(d, "ray", "vidcolor.stages", "vidcolor.executor", "vidcolor.store")) == []


@pytest.mark.parametrize("lower", ["vidcolor.models", "vidcolor.media", "vidcolor.store", "vidcolor.stages", "vidcolor.plan", "vidcolor.state"])
def test_lower_layers_do_not_import_upper_ones(lower):
    upper = ("vidcolor.run", "vidcolor.job", "vidcolor.executor", "vidcolor.cli")
    assert violations(lambda m, d: under(m, lower) and under(d, *upper)) == []


def test_tasks_are_thin():
    """No task module holds more than ~40 lines of logic (code lines, docstrings and imports aside)."""
    fat = {}
    for path in (REPO / "tasks").glob("*.py"):
        tree = ast.parse(path.read_text())
        lines = set()
        for node in tree.body:
            if isinstance(node, (ast.Import, ast.ImportFrom)) or (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)):
                continue
            for sub in ast.walk(node):
                if isinstance(sub, ast.Expr) and isinstance(getattr(sub, "value", None), ast.Constant):
                    continue
                if hasattr(sub, "lineno"):
                    lines.add(sub.lineno)
        if len(lines) > 40:
            fat[path.name] = len(lines)
    assert fat == {}
