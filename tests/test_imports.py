"""The package's import graph, read statically (``ast`` over every module, imports at module level and inside
functions alike): no cycle, and the torch-free steps stay torch-free."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import unlearnbench

SRC = Path(unlearnbench.__file__).parent


def module_name(path: Path) -> str:
    parts = ("unlearnbench",) + path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_module(name: str) -> bool:
    rel = Path(*name.split(".")[1:])
    return (SRC / rel).with_suffix(".py").is_file() or (SRC / rel / "__init__.py").is_file()


def imports(path: Path) -> set[str]:
    """The unlearnbench modules ``path`` imports anywhere in its code (``from pkg import submodule`` counts as the
    submodule, ``from pkg import name`` as the package)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("unlearnbench")}
        elif isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level else ""
            target = ".".join(p for p in (base, node.module) if p)
            if not target.startswith("unlearnbench"):
                continue
            for alias in node.names:
                found.add(f"{target}.{alias.name}" if is_module(f"{target}.{alias.name}") else target)
    return {m for m in found if m != name}


def graph() -> dict[str, set[str]]:
    return {module_name(p): imports(p) for p in sorted(SRC.rglob("*.py"))}


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        state[node] = "done"
        stack.pop()
        return None

    for node in sorted(edges):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_cycle_finder_finds_cycles():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_the_scan_sees_relative_and_function_level_imports():
    edges = graph()
    assert "unlearnbench.results" in edges["unlearnbench.tables"]  # from .results import ...
    assert "unlearnbench.train" in edges["unlearnbench.references"]  # inside relearn_curve
    assert "unlearnbench.steps.unlearn" in edges["unlearnbench.steps.references"]  # from .unlearn import ...


def test_no_import_cycle():
    cycle = find_cycle(graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_planning_and_results_steps_import_no_torch():
    """The metrics and report jobs, and the modules the workflow reads when it plans, never load torch."""
    modules = ["unlearnbench.steps", "unlearnbench.steps.evaluate", "unlearnbench.steps.report",
               "unlearnbench.references", "unlearnbench.runner"]
    code = f"import sys, {', '.join(modules)}; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_gpu_hours_plans_without_torch():
    """benchmarks/gpu_hours.py counts jobs from the catalog, as the workflow plans: no torch."""
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_hours.py"
    code = (f"import runpy, sys; sys.argv = ['gpu_hours.py', 'config/papers/del.yaml']\n"
            f"try:\n    runpy.run_path({str(script)!r}, run_name='__main__')\nexcept SystemExit as e:\n    assert not e.code\n"
            "assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=script.parents[1], capture_output=True)
