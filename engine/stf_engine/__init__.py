"""STF engine: spatiotemporal fusion of coarse and fine rasters, headless (no Qt or QGIS).

This module is the engine's whole public API: the CLI, the Processing algorithms and the QGIS dialog use
these names only. Layers below it import one way (the README's Architecture section):
cli → series → fusion | training | evaluation → inputs → methods → models → raster, core → errors, roles.
"""
from .core.device import DEVICES, PRECISIONS, devices_found
from .core.options import Option, parse_number
from .core.tiling import DEFAULT_TILE
from .errors import FusionCancelled, StfError
from .evaluation.evaluate import METRIC_ORDER, EvaluationReport, EvaluationRequest, evaluate, parse_evaluation_scales
from .evaluation.evaluate import SCALE_ROLES as EVALUATION_SCALE_ROLES
from .evaluation.evaluate import UNITS as METRIC_UNITS
from .fusion.check import CheckReport, check, check_settings
from .fusion.request import DEFAULT_BATCH, FusionRequest, FusionResult, parse_scales
from .fusion.run import fuse, fuse_dates
from .fusion.surveys import ReferenceSurveys
from .inputs.masks import MASK_ROLES, MASK_RULES, parse_mask_rules
from .inputs.series_list import list_series
from .methods.catalog import describe_options, list_methods, method_halo, parse_options
from .methods.contract import MethodSpec
from .models import MODELS as _MODELS
from .roles import (
    ALL_ROLES, COARSE_REFERENCE, COARSE_REFERENCE_2, COARSE_TARGET, FINE_REFERENCE, FINE_REFERENCE_2, PAN,
    SCALE_ROLES,
)
from .roles import LABELS as ROLE_LABELS
from .series.plan import PlannedDate, plan_series
from .series.request import GPU_DATE_BATCH, DEFAULT_MAX_GAP, DEFAULT_SERIES_METHOD, DateResult, SeriesRequest, SeriesResult
from .series.run import fuse_series
from .training import TrainingRequest, TrainingResult, check_training, train
from .training.request import DEFAULT_MINUTES as DEFAULT_TRAINING_MINUTES
from .training.request import MODES as TRAINING_MODES
from .version import __version__

DEFAULT_METHOD = "starfm"
"""The method a request runs when it names none (the CLI's and the Python API's default)."""
RECOMMENDED_METHOD = "auto"
"""What the dialog and Processing preselect: the method validated on the scene itself."""
TRAINABLE_MODELS = tuple(_MODELS)
"""Deep models `train` can fit (each is also a fusion method of the same name)."""

__all__ = [
    "ALL_ROLES",
    "COARSE_REFERENCE",
    "COARSE_REFERENCE_2",
    "COARSE_TARGET",
    "CheckReport",
    "DEFAULT_BATCH",
    "DEFAULT_MAX_GAP",
    "DEFAULT_METHOD",
    "DEFAULT_SERIES_METHOD",
    "DEFAULT_TILE",
    "DEFAULT_TRAINING_MINUTES",
    "DEVICES",
    "DateResult",
    "EvaluationReport",
    "EVALUATION_SCALE_ROLES",
    "EvaluationRequest",
    "FINE_REFERENCE",
    "FINE_REFERENCE_2",
    "FusionCancelled",
    "FusionRequest",
    "FusionResult",
    "GPU_DATE_BATCH",
    "MASK_ROLES",
    "MASK_RULES",
    "METRIC_ORDER",
    "METRIC_UNITS",
    "MethodSpec",
    "Option",
    "PAN",
    "PRECISIONS",
    "PlannedDate",
    "ReferenceSurveys",
    "RECOMMENDED_METHOD",
    "ROLE_LABELS",
    "SCALE_ROLES",
    "SeriesRequest",
    "SeriesResult",
    "StfError",
    "TRAINABLE_MODELS",
    "TRAINING_MODES",
    "TrainingRequest",
    "TrainingResult",
    "__version__",
    "check",
    "check_settings",
    "check_training",
    "describe_options",
    "devices_found",
    "evaluate",
    "fuse",
    "fuse_dates",
    "fuse_series",
    "list_methods",
    "list_series",
    "method_halo",
    "parse_evaluation_scales",
    "parse_mask_rules",
    "parse_number",
    "parse_options",
    "parse_scales",
    "plan_series",
    "train",
]
