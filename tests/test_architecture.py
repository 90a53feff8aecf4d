"""The package's layers (docs/architecture.md): every import, lazy ones inside functions
included, points down the list below or stays in its own package; no module imports itself
back through others."""

import ast
import subprocess
import sys
from pathlib import Path

import fat

# Top to bottom. A package may import those below it, never those above.
LAYERS = [
    "cli",
    "demo",
    "analysis",
    "train",
    "predict",
    "featurize",
    "datasets",
    "runs",
    "models",
    "store",
    "core",
]
PACKAGE = Path(fat.__file__).parent


def module_imports() -> dict[str, set[str]]:
    """fat module name -> the fat modules it imports."""
    graph = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        targets = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets.add(node.module)
            elif isinstance(node, ast.Import):
                targets.update(a.name for a in node.names)
        graph[name] = {t for t in targets if t == "fat" or t.startswith("fat.")}
    return graph


def layer(module: str) -> int | None:
    parts = module.split(".")
    return LAYERS.index(parts[1]) if len(parts) > 1 and parts[1] in LAYERS else None


def test_every_package_has_a_layer():
    packages = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists()}
    assert packages - {"data"} == set(LAYERS)  # fat/data holds package data, no code


def test_imports_point_down():
    upward = []
    for module, targets in module_imports().items():
        mine = layer(module)
        for target in targets:
            theirs = layer(target)
            if mine is not None and theirs is not None and theirs < mine:
                upward.append(f"{module} -> {target}")
    assert upward == []


def test_no_import_cycles():
    graph = module_imports()
    known = set(graph)

    def resolve(target: str) -> str:
        while target not in known and "." in target:
            target = target.rsplit(".", 1)[0]
        return target

    edges = {m: {resolve(t) for t in ts} - {m} for m, ts in graph.items()}
    # a package's __init__ re-exporting its modules is not a cycle of the design
    edges = {m: {t for t in ts if not m.startswith(t + ".")} for m, ts in edges.items()}
    state: dict[str, int] = {}
    cycles = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in edges.get(node, ()):
            if state.get(nxt) == 1:
                cycles.append(" -> ".join(path[path.index(nxt) :] + [nxt]))
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for node in edges:
        if node not in state:
            visit(node, [node])
    assert cycles == []


def test_the_cli_starts_without_torch():
    """Every command's options come from settings records, which import no torch: `fat
    --help` and `fat featurize` stay light (a featurize process that imported torch at start
    took ~230 MB before its first clip)."""
    heavy = "('torch', 'zarr', 'h5py')"
    code = f"import sys, fat.cli; print(sorted(m for m in {heavy} if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == "[]", done.stdout + done.stderr
