"""Typed request and result of one training run: what `stf train`, the QGIS task and Processing hand to `train`."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

from .. import roles
from ..core.fields import as_text_paths, check_bands, check_on_disk, check_switches
from ..core.options import check_real, check_whole
from ..inputs.masks import parse_mask_rules
from ..raster.reader import check_scales

MODES = ("self", "series")
MIN_PATCH = 8
"""Smallest training patch side in pixels."""
DEFAULT_MINUTES = 10.0
"""Default training time budget in minutes: enough on 2 CPU cores for the scenes the benchmark trains on."""


@dataclass
class TrainingRequest:
    """One training run; rasters are any GDAL-readable files and are aligned to the fine grid as in fusing."""

    model: str
    output: str
    """Checkpoint path (.pt); rewritten after every epoch, so an interrupted run can resume from it."""
    mode: str = "self"
    """self: Wald reduced-resolution training on one scene; series: dated coarse/fine(/pan) inputs."""
    coarse_target: Optional[str] = None
    fine_reference: Optional[str] = None
    coarse_reference: Optional[str] = None
    pan: Optional[str] = None
    series: Optional[str] = None
    """CSV (date,coarse,fine[,pan,coarse_mask,fine_mask]) or a folder of files named with a date and
    coarse/fine/pan/coarse_mask/fine_mask; a mask's flagged pixels are left out of training for its date's image."""
    mask_rules: Dict[str, str] = field(default_factory=dict)
    """Series: 'coarse'/'fine' → how that role's mask rasters are decoded (`MASK_RULES`); 'nonzero' when not named."""
    target_dates: Optional[Tuple[str, ...]] = None
    """Series: dates whose fine image is predicted in training (others serve as references); None = all."""
    patch: int = 256
    epochs: int = 20
    batch: int = 8
    steps_per_epoch: Optional[int] = None
    """None: enough patches to cover the training pixels about once (1 to 500 steps)."""
    lr: float = 1e-3
    seed: int = 0
    device: str = "auto"
    threads: Optional[int] = None
    """CPU threads; None takes the number of physical cores."""
    validation_date: Optional[str] = None
    """Series: date held out for validation; None holds out the bottom rows that hold `validation_fraction` of
    the valid pixels."""
    validation_fraction: float = 0.1
    patience: int = 5
    """Stop after this many epochs without a better validation RMSE."""
    minutes: Optional[float] = DEFAULT_MINUTES
    """Time budget: training stops after the epoch during which it runs out (None: no budget)."""
    resume: Optional[str] = None
    keep_training_state: bool = True
    """False writes a slim checkpoint (weights and metadata only; resuming from it restarts the optimiser)."""
    bands: Optional[Tuple[int, ...]] = None
    scales: Dict[str, float] = field(default_factory=dict)
    coarse_resolution: Optional[float] = None
    options: Dict[str, object] = field(default_factory=dict)
    """Model hyper-parameters and loss weights (see each model's OPTIONS)."""

    def __post_init__(self) -> None:
        """Refuse a mistyped or out-of-range number at once with StfError naming it, as FusionRequest does."""
        check_whole(self.patch, "--patch", MIN_PATCH)
        check_whole(self.epochs, "--epochs", 1)
        check_whole(self.batch, "--batch", 1)
        check_whole(self.steps_per_epoch, "--steps (steps_per_epoch)", 1, optional=True)
        check_real(self.lr, "--lr")
        check_whole(self.seed, "--seed", 0)
        check_whole(self.threads, "--threads", 1, optional=True)
        check_real(self.validation_fraction, "--val-fraction (validation_fraction)", 0, 1)
        check_whole(self.patience, "--patience", 1)
        check_real(self.minutes, "--minutes", optional=True)
        check_real(self.coarse_resolution, "--coarse-res", optional=True)
        check_scales(self.scales, roles.ALL_ROLES)
        as_text_paths(self, ("output", roles.COARSE_TARGET, roles.FINE_REFERENCE, roles.COARSE_REFERENCE, roles.PAN,
                             "series", "resume"))
        check_on_disk(self, ("output",))
        check_switches(self, ("keep_training_state",))
        check_bands(self.bands)
        self.mask_rules = parse_mask_rules(self.mask_rules)


@dataclass
class TrainingResult:
    checkpoint: str
    model: str
    epochs: int
    """Epochs run in total (including resumed ones)."""
    best_epoch: int
    steps: int
    train_losses: List[float]
    validation_losses: List[float]
    validation_metrics: Dict[str, float]
    """Of the best epoch, in reflectance: rmse and mae; rmse_coarse_input and rmse_delta (delta smoothed by
    delta_smoothing pixels to the held-out truth's sharpness), the baselines on the same patches."""
    seconds: float
    device: str
    samples: Dict[str, int] = field(default_factory=dict)
    stopped_early: bool = False
    warnings: Tuple[str, ...] = ()
    verdict: str = ""
    """One sentence: the held-out score next to delta's and whether the model beats it."""
