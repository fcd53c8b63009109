"""STF engine: spatiotemporal fusion of coarse and fine rasters, headless (no Qt or QGIS)."""
from .assess.evaluation import EvaluationReport, EvaluationRequest, evaluate
from .errors import FusionCancelled, StfError
from .registry import MethodSpec, available_methods, get_method
from .request import FusionRequest, FusionResult
from .runner import fuse
from .training import TrainingRequest, TrainingResult, train


__all__ = [
    "EvaluationReport",
    "EvaluationRequest",
    "FusionCancelled",
    "FusionRequest",
    "FusionResult",
    "MethodSpec",
    "StfError",
    "TrainingRequest",
    "TrainingResult",

    "available_methods",
    "evaluate",
    "fuse",
    "get_method",
    "train",
]

__version__ = "0.1.0"
