"""Finding the fusion engine: the copy bundled in the plugin zip, else the installed `stf_engine` (development).

QGIS plugins share one interpreter, so the bundled engine lives inside this package, never at top level.
"""
from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass
from types import ModuleType
from typing import Optional

BUNDLED = f"{__package__}.stf_engine"

TORCH_HELP = (
    "PyTorch (torch) is not installed in the Python that QGIS runs, so no fusion method is available: "
    "every method (STARFM, the baselines and the deep models) runs on torch. Install it into QGIS's own "
    "Python and restart QGIS. Linux: python3 -m pip install --user torch "
    "--index-url https://download.pytorch.org/whl/cpu ; Windows: in the OSGeo4W Shell, "
    "python -m pip install torch --index-url https://download.pytorch.org/whl/cpu ; macOS: "
    "/Applications/QGIS.app/Contents/MacOS/bin/python3 -m pip install torch. "
    "numpy and GDAL come with QGIS: do not install or upgrade them with pip."
)


@dataclass
class EngineStatus:
    """The loaded engine module, or why it could not load (a message meant for the user)."""

    engine: Optional[ModuleType]
    problem: Optional[str] = None

    @property
    def ok(self) -> bool:
        return self.engine is not None


def load_engine() -> EngineStatus:
    """Import the bundled engine if the zip carries one, else the installed one; never installs anything."""
    name = BUNDLED if importlib.util.find_spec(BUNDLED) is not None else "stf_engine"
    try:
        engine = importlib.import_module(name)
        engine.list_methods()
    except ImportError as exc:
        return EngineStatus(None, missing_module_message(exc))
    return EngineStatus(engine)


def missing_module_message(error: ImportError) -> str:
    """What to install, for the module whose import failed."""
    missing = (error.name or "").split(".")[0]
    if missing == "torch":
        return TORCH_HELP
    if missing == "stf_engine":
        return "the fusion engine is missing: install the plugin from its release zip, which bundles it"
    return (
        f"the Python module '{missing or error}' needed by the fusion engine is missing from QGIS's Python; "
        f"install it (e.g. python3 -m pip install --user {missing}, or your system's package such as "
        f"python3-{missing}) and restart QGIS"
    )
