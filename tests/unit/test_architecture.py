"""The layout is the architecture (docs/architecture.md): packages import only from the
layers below them, no import cycle, and the pipelines import nothing from the harness."""
from __future__ import annotations

import ast
from pathlib import Path

from harness.support.paths import PIPELINES, ROOT

# Lowest first: a module may import from its own layer and the ones before it.
# results/ holds the schema of what a run produces: the judge fills it, everything after reads it.
LAYERS = ["support", "provision", "workload", "results", "load", "judge", "backends", "engines", "run", "present",
          "cli", "fixtures"]
HARNESS = ROOT / "harness"


def _module(path: Path) -> str:
    return ".".join(("harness", *path.relative_to(HARNESS).with_suffix("").parts)).removesuffix(".__init__")


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            found |= {f"{node.module}.{a.name}" for a in node.names} if node.module == "harness" else {node.module}
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
    return {m for m in found if m == "harness" or m.startswith("harness.")}


def _graph() -> dict[str, set[str]]:
    return {_module(p): _imports(p) for p in HARNESS.rglob("*.py")}


def _layer(module: str) -> str:
    return module.split(".")[1] if "." in module else ""


def test_every_package_is_a_known_layer() -> None:
    packages = {p.name for p in HARNESS.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert packages <= set(LAYERS), packages - set(LAYERS)


def test_no_upward_import() -> None:
    upward = [f"{m} -> {t}" for m, targets in _graph().items() for t in targets
              if _layer(m) in LAYERS and _layer(t) in LAYERS and LAYERS.index(_layer(t)) > LAYERS.index(_layer(m))]
    assert not upward, upward


def test_no_import_cycle() -> None:
    graph = _graph()
    modules = set(graph)
    edges = {m: {t for t in ts if t in modules} for m, ts in graph.items()}
    state: dict[str, int] = {}  # 1: on the path, 2: done

    def visit(m: str, path: list[str]) -> list[str] | None:
        state[m] = 1
        for t in sorted(edges[m]):
            if state.get(t) == 1:
                return [*path[path.index(t):], t] if t in path else [m, t]
            if t not in state and (cycle := visit(t, [*path, t])):
                return cycle
        state[m] = 2
        return None

    for m in sorted(modules):
        if m not in state:
            cycle = visit(m, [m])
            assert cycle is None, " -> ".join(cycle)


def test_pipelines_import_nothing_from_the_harness() -> None:
    offenders = [str(p.relative_to(ROOT)) for p in PIPELINES.rglob("*.py") if _imports(p)]
    assert not offenders, offenders


def test_every_engine_kind_has_a_registry_entry_and_back() -> None:
    from harness.engines.registry import REGISTRY
    from harness.workload.engine_options import KINDS

    assert set(REGISTRY) == set(KINDS)


def test_the_harness_never_runs_the_docker_cli() -> None:
    """Containers, networks, images and execs go through testcontainers and the Docker SDK
    (harness/backends/): no argv naming `docker`, no lookup of the CLI, and the base image's
    bootstrap script leaves the import to the SDK too."""
    offenders = []
    for path in HARNESS.rglob("*.py"):
        tree = ast.parse(path.read_text())
        # ROOT / "docker" is the folder of Dockerfiles, not the command.
        folders = {id(n.right) for n in ast.walk(tree) if isinstance(n, ast.BinOp) and isinstance(n.op, ast.Div)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in folders and \
                    node.value.split(" ")[0] in ("docker", "/usr/bin/docker"):
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}: {node.value!r}")
    bootstrap = ROOT / "docker" / "base" / "bootstrap.sh"
    offenders += [f"{bootstrap.relative_to(ROOT)}: {line}" for line in bootstrap.read_text().splitlines()
                  if line.lstrip().startswith("docker ") or "| docker" in line]
    assert not offenders, offenders
