"""STF engine: spatiotemporal fusion of coarse and fine rasters, headless (no Qt or QGIS)."""
from .errors import FusionCancelled, StfError
from .registry import MethodSpec, available_methods, get_method
from .request import FusionRequest, FusionResult
from .runner import fuse

__all__ = [
    "FusionCancelled",
    "FusionRequest",
    "FusionResult",
    "MethodSpec",
    "StfError",
    "available_methods",
    "fuse",
    "get_method",
]
__version__ = "0.1.0"
