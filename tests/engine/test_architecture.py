"""The engine's layers import one way only, with no cycles; the layer order is declared here, once."""
from __future__ import annotations

from typing import Dict, List, Set

import pytest

from helpers.imports import imported_modules, modules
from helpers.paths import ENGINE

PACKAGE = "stf_engine"
LAYERS = (
    ("__main__",),
    ("cli",),
    ("__init__",),  # the public API: what the front ends use
    ("series",),  # a run per date, built on fusion
    ("fusion", "training", "evaluation"),
    ("inputs",),
    ("methods",),
    ("models",),
    ("raster",),
    ("core",),
    ("errors", "roles", "version"),
)
"""Top to bottom: a module may import from its own part and from any part in a lower layer, nothing else."""
RANK = {part: rank for rank, parts in enumerate(LAYERS) for part in parts}
FORBIDDEN_BELOW_FRONT_ENDS = ("qgis", "PyQt5", "qgis.PyQt")


def part_of(module: str) -> str:
    parts = module.split(".")
    return "__init__" if len(parts) == 1 else parts[1]


@pytest.fixture(scope="module")
def graph() -> Dict[str, Set[str]]:
    found = modules(ENGINE, PACKAGE)
    return {name: set(imported_modules(path, name, set(found))) for name, path in found.items()}


def test_every_engine_module_belongs_to_a_declared_layer(graph):
    undeclared = sorted({part_of(name) for name in graph} - set(RANK))
    assert not undeclared, f"parts of stf_engine missing from LAYERS: {undeclared}"


def test_imports_flow_from_higher_layers_to_lower_ones_only(graph):
    wrong = [
        f"{name} ({part_of(name)}) imports {target} ({part_of(target)})"
        for name, targets in graph.items()
        for target in targets
        if part_of(target) != part_of(name) and RANK[part_of(target)] <= RANK[part_of(name)]
    ]
    assert not wrong, "imports against the layer order:\n" + "\n".join(sorted(wrong))


def test_no_import_cycles(graph):
    cycles: List[List[str]] = []
    state: Dict[str, int] = {}  # 1 = on the current path, 2 = done

    def visit(name: str, path: List[str]) -> None:
        state[name] = 1
        for target in sorted(graph[name]):
            if state.get(target) == 1:
                cycles.append(path[path.index(target):] + [target])
            elif target not in state:
                visit(target, path + [target])
        state[name] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert not cycles, "import cycles:\n" + "\n".join(" → ".join(c) for c in cycles)


def test_the_engine_never_imports_qt_or_qgis():
    for name, path in modules(ENGINE, PACKAGE).items():
        text = path.read_text()
        for forbidden in FORBIDDEN_BELOW_FRONT_ENDS:
            assert f"import {forbidden}" not in text and f"from {forbidden}" not in text, (name, forbidden)


def test_the_checker_sees_a_violation_when_there_is_one(tmp_path):
    """The layer check is not vacuous: a core module importing fusion is flagged."""
    root = tmp_path / PACKAGE
    (root / "core").mkdir(parents=True)
    (root / "fusion").mkdir()
    for folder in (root, root / "core", root / "fusion"):
        (folder / "__init__.py").write_text("")
    (root / "fusion" / "run.py").write_text("from ..core import tiling\n")
    (root / "core" / "tiling.py").write_text("from ..fusion.run import fuse\n")
    found = modules(root, PACKAGE)
    graph = {name: set(imported_modules(path, name, set(found))) for name, path in found.items()}
    assert graph["stf_engine.core.tiling"] == {"stf_engine.fusion", "stf_engine.fusion.run"}
    assert graph["stf_engine.fusion.run"] == {"stf_engine.core", "stf_engine.core.tiling"}
