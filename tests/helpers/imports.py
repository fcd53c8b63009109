"""Reading what Python modules import, with `ast`, without running them."""
from __future__ import annotations

import ast
from pathlib import Path
from typing import Dict, Iterator, Set


def module_name(path: Path, package_root: Path, package: str) -> str:
    """'stf_engine.fusion.run' for <package_root>/fusion/run.py; a package's __init__ is the package itself."""
    parts = list(path.relative_to(package_root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join([package, *parts])


def modules(package_root: Path, package: str) -> Dict[str, Path]:
    """Every module of a package by dotted name."""
    return {module_name(p, package_root, package): p for p in sorted(package_root.rglob("*.py"))}


def imported_modules(path: Path, name: str, known: Set[str]) -> Iterator[str]:
    """The modules of `known` that the module `name` (at `path`) imports, relative imports resolved.

    `from X import Y` counts as importing X.Y when that is a module, else X itself; the packages between
    the root and an imported module are imported too (their __init__ runs), so they count as well, except
    the packages that enclose the importer itself.
    """
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        targets = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = name.split(".") if is_package else name.split(".")[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                targets.append(candidate if candidate in known else base)
        for target in targets:
            parts = target.split(".")
            for depth in range(2, len(parts) + 1):
                parent = ".".join(parts[:depth])
                if parent in known and parent != name and not name.startswith(parent + "."):
                    yield parent  # a package enclosing the importer is already being imported
