"""Finding the fusion engine: the copy bundled in the plugin zip, else the installed `stf_engine` (development).

QGIS plugins share one interpreter, so the bundled engine lives inside this package, never at top level.
"""
from __future__ import annotations

import importlib
import importlib.util
import traceback
from dataclasses import dataclass
from types import ModuleType
from typing import Optional

BUNDLED = f"{__package__}.stf_engine"

TORCH_INSTALL = (
    "Install it into QGIS's own Python and restart QGIS. Debian, Ubuntu and other Linux: python3 -m pip install "
    "--user --break-system-packages torch --index-url https://download.pytorch.org/whl/cpu (--user keeps it in "
    "your home folder; the flag is needed where the system Python is 'externally managed'; Debian 12's "
    "python3-torch, 1.13, is too old); Windows: in the OSGeo4W Shell, python -m pip install torch "
    "--index-url https://download.pytorch.org/whl/cpu ; macOS: /Applications/QGIS.app/Contents/MacOS/bin/python3 "
    "-m pip install torch. numpy and GDAL come with QGIS: do not install or upgrade them with pip."
)
TORCH_HELP = (
    "PyTorch (torch) is not installed in the Python that QGIS runs, so no fusion method is available: "
    "every method (STARFM, the baselines and the deep models) runs on torch. " + TORCH_INSTALL
)
RASTERIO_HELP = (
    "the Python module 'rasterio', with which the fusion engine reads and writes rasters, is not installed in the "
    "Python that QGIS runs. Install it from where QGIS came from, then restart QGIS: Debian and Ubuntu: sudo apt "
    "install python3-rasterio ; Windows: in the OSGeo4W Setup, Advanced Install, the package python3-rasterio ; "
    "elsewhere: with QGIS's Python, python3 -m pip install rasterio numpy=={numpy} (keeping QGIS's numpy)."
)


@dataclass
class EngineStatus:
    """The loaded engine module, or why it could not load (a message meant for the user)."""

    engine: Optional[ModuleType]
    problem: Optional[str] = None
    detail: Optional[str] = None
    """The traceback of a module that failed as it loaded, for the log (not for the message bar)."""

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
    except Exception as exc:  # noqa: BLE001 - a module that is there but cannot load (Windows: a DLL of torch)
        return EngineStatus(None, broken_module_message(exc), traceback.format_exc())
    return EngineStatus(engine)


def missing_module_message(error: ImportError) -> str:
    """What to install, for the module whose import failed (or refused, such as a PyTorch too old)."""
    missing = (error.name or "").split(".")[0]
    if missing == "torch":
        return TORCH_HELP if isinstance(error, ModuleNotFoundError) else f"{error}. {TORCH_INSTALL}"
    if missing == "stf_engine":
        return "the fusion engine is missing: install the plugin from its release zip, which bundles it"
    if missing == "rasterio":
        return RASTERIO_HELP.format(numpy=_numpy_version())
    return (
        f"the Python module '{missing or error}' needed by the fusion engine is missing from QGIS's Python; "
        f"install it (e.g. your system's package such as python3-{missing}, or python3 -m pip install --user "
        f"{missing} with QGIS's Python) and restart QGIS"
    )


def broken_module_message(error: Exception) -> str:
    """What to do when a module the engine imports is installed but fails as it loads (the log has the traceback)."""
    return (
        f"the fusion engine could not start: loading a module it needs failed with {type(error).__name__}: {error}. "
        "If this names torch (on Windows often a DLL such as c10.dll), reinstall PyTorch's CPU build, and on "
        "Windows install Microsoft's Visual C++ Redistributable first. " + TORCH_INSTALL
    )


def _numpy_version() -> str:
    """QGIS's numpy version, for a pip line that keeps it."""
    try:
        import numpy
    except ImportError:
        return "<QGIS's version>"
    return numpy.__version__
