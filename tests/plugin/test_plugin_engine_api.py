"""The plugin reaches the engine through its public API only: the names `stf_engine.__all__` exports."""
from __future__ import annotations

import ast
from pathlib import Path
from typing import List, Tuple

import stf_engine
from helpers.paths import PLUGIN

LOADER = "engine_loader.py"
"""The one module that imports the engine package itself (the bundled copy, else the installed one)."""


def engine_uses(path: Path) -> Tuple[List[str], List[str]]:
    """(names read from an `engine` object, engine modules imported) in one plugin module."""
    names, imports = [], []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Attribute):
            base = node.value
            base_name = base.id if isinstance(base, ast.Name) else base.attr if isinstance(base, ast.Attribute) else ""
            if base_name == "engine":
                names.append(node.attr)
        elif isinstance(node, ast.ImportFrom) and "stf_engine" in (node.module or ""):
            imports.append(node.module)
        elif isinstance(node, ast.Import):
            imports += [alias.name for alias in node.names if "stf_engine" in alias.name]
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "import_module":
            imports.append(ast.unparse(node.args[0]))
    return names, imports


def test_plugin_reads_only_exported_engine_names():
    exported = set(stf_engine.__all__) | {"__name__", "__file__"}
    wrong = []
    for path in sorted(PLUGIN.rglob("*.py")):
        names, imports = engine_uses(path)
        wrong += [f"{path.name}: engine.{name}" for name in names if name not in exported]
        allowed = {"name"} if path.name == LOADER else set()
        wrong += [f"{path.name}: imports {module}" for module in imports if module not in allowed]
    assert not wrong, "the plugin reaches past the engine's public API:\n" + "\n".join(wrong)


def test_the_check_catches_a_private_name(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("def f(self):\n    return self.engine.fusion.run, importlib.import_module(f'{x}.models')\n")
    names, imports = engine_uses(sample)
    assert names == ["fusion"] and imports == ["f'{x}.models'"]


def test_every_exported_name_exists():
    assert [name for name in stf_engine.__all__ if not hasattr(stf_engine, name)] == []
