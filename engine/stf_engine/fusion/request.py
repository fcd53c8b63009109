"""Typed request and result of one fusion run: what the CLI, the QGIS task and Processing hand to `fuse`."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Dict, Optional, Sequence, Tuple, Union

from .. import roles
from ..core.fields import as_text_paths, check_bands, check_on_disk, check_switches
from ..core.options import check_real, check_whole, finite_number, split_list
from ..core.tiling import DEFAULT_TILE, check_tile
from ..errors import StfError
from ..inputs.aligned import Alignment
from ..raster.reader import Scale, check_scales, parse_scale

DEFAULT_BATCH = 4
"""Tiles per batch handed to the method."""
ERROR_MAP_NAMES = (
    "coarse_residual", "coarse_residual_rms", "temporal_change", "seam_mask", "abs_error", "rms_error", "uncertainty",
)
"""The files (<name>.tif) a run may write into its error-maps folder."""


@dataclass
class FusionRequest:
    """Everything one run needs; paths are any GDAL-readable rasters, everything lands on the fine grid."""

    coarse_target: str
    fine_reference: str
    output: str
    coarse_reference: Optional[str] = None
    pan: Optional[str] = None
    fine_reference_2: Optional[str] = None
    """A second fine reference, on the other side of the target date from the first (two-pair methods)."""
    coarse_reference_2: Optional[str] = None
    """The coarse image at the second fine reference's date."""
    method: str = "starfm"
    weights: Optional[str] = None
    error_maps_dir: Optional[str] = None
    truth: Optional[str] = None
    """Fine image at the target date, if known: enables error-vs-truth maps."""
    uncertainty: bool = False
    """Also write the expected-error map (uncertainty.py): coarse change, fine texture and the methods' disagreement."""
    tile: int = DEFAULT_TILE
    """Core tile size a in fine pixels; 0 runs the whole raster as one piece."""
    halo: Optional[int] = None
    """Halo b read around each tile; None takes the method's receptive radius, 0 gives naive tiling."""
    batch: int = DEFAULT_BATCH
    device: str = "auto"
    precision: str = "fp32"
    """fp32, or fp16/bf16 autocast (CUDA only)."""
    threads: Optional[int] = None
    """CPU threads for the computation; None takes the number of physical cores."""
    bands: Optional[Tuple[int, ...]] = None
    """1-based coarse bands, in the order of the fine reference's bands."""
    scales: Dict[str, Scale] = field(default_factory=dict)
    """Per-role factor, or (scale, offset), from stored values to reflectance (stored × scale + offset),
    overriding metadata and defaults."""
    coarse_resolution: Optional[float] = None
    """Effective coarse pixel size in fine-grid units, for coarse data already resampled to a finer grid."""
    resampling: Optional[str] = None
    """Resampling for coarse inputs brought up to the fine grid; None takes the method's choice."""
    coarse_shift: Optional[Tuple[float, float]] = None
    """Known misregistration of the coarse rasters, in fine pixels east and south, applied to both."""
    register: bool = False
    """Estimate coarse_shift by correlating the coarse and fine content (ignored when coarse_shift is set)."""
    options: Union[Dict[str, object], str, Sequence[str]] = field(default_factory=dict)
    """Method parameters (e.g. STARFM's window) as values or text, checked against the method's declared options."""
    cog: bool = False
    """Write the fused image as a Cloud Optimized GeoTIFF (internal overviews; a second pass over the file)."""
    workers: Optional[int] = None
    """Predict on a local Dask cluster of this many worker processes (tiles as tasks)."""
    scheduler: Optional[str] = None
    """Address of a running Dask scheduler to predict on instead (its workers must see the input paths)."""

    def __post_init__(self) -> None:
        """Refuse a mistyped or out-of-range number at once with StfError naming it (as the API, Processing and the
        CLI build requests alike); the checks that need the method or the files are `check`'s."""
        check_tile(self.tile)
        check_whole(self.halo, "--halo", 0, optional=True)
        check_whole(self.batch, "--batch", 1)
        check_whole(self.threads, "--threads", 1, optional=True)
        check_whole(self.workers, "--workers", 1, optional=True)
        check_real(self.coarse_resolution, "--coarse-res", optional=True)
        check_scales(self.scales, (*roles.ALL_ROLES, "truth"))
        _check_shift(self.coarse_shift)
        as_text_paths(self, (*roles.ALL_ROLES, "output", "weights", "error_maps_dir", "truth"))
        check_on_disk(self, ("output", "error_maps_dir"))
        check_switches(self, ("uncertainty", "register", "cog"))
        if not isinstance(self.method, str):
            raise StfError(f"method must be a method's name, e.g. 'starfm'; got {self.method!r}")
        check_bands(self.bands)

    def inputs(self) -> Dict[str, str]:
        """The roles that were given, mapped to their paths."""
        given = {role: getattr(self, role) for role in roles.ALL_ROLES}
        return {role: path for role, path in given.items() if path}

    def alignment(self, default_resampling: str) -> Alignment:
        """How this request's inputs are aligned; the method's resampling unless the request names one."""
        return Alignment(
            bands=self.bands,
            scales=dict(self.scales),
            coarse_resolution=self.coarse_resolution,
            resampling=self.resampling or default_resampling,
            coarse_shift=self.coarse_shift,
            register=self.register,
        )


@dataclass
class FusionResult:
    """What a finished run produced and how it ran."""

    output: str
    method: str
    device: str
    tiles: int
    tile: int
    halo: int
    seconds: float
    ratio: int
    width: int
    height: int
    bands: int
    tile_borders: Tuple[Tuple[int, ...], Tuple[int, ...]] = ((), ())
    """Rows and columns where one tile's written core meets the next (for seam measures)."""
    coarse_shift: Tuple[float, float] = (0.0, 0.0)
    """Shift applied to the coarse rasters' georeference, in fine pixels east and south."""
    error_maps: Dict[str, str] = field(default_factory=dict)
    warnings: Tuple[str, ...] = ()
    threads: int = 1
    """CPU threads the run used."""
    validation: Tuple[Tuple[str, float], ...] = ()
    """With method auto: each candidate's RMSE in Wald's reduced-resolution validation, best first."""
    choice: str = ""
    """With method auto: what it ran and why, when that is not delta (taking delta is a warning: it adds nothing)."""
    truth_rmse: Optional[float] = None
    """With a truth: the fused image's RMSE against it over every pixel and band where both hold data, in the error
    maps' units (reflectance, or the data's own such as kelvin); rms_error holds it pixel by pixel."""


def parse_scales(items: Union[str, Sequence[str]]) -> Dict[str, Scale]:
    """'fine=2.75e-5:-0.2, coarse=1' or ['fine=1e-4', '1e-4'] → {role: factor or (scale, offset)};
    a value without a role sets every role."""
    scales: Dict[str, Scale] = {}
    named = set()
    for item in split_list(items):
        role_name, _, value = (part.strip() for part in item.rpartition("="))
        targets = roles.SCALE_ROLES.get(role_name) if role_name else roles.ALL_ROLES
        if targets is None:
            raise StfError(f"unknown scale role '{role_name}'; use one of {', '.join(roles.SCALE_ROLES)}")
        if role_name in named:
            raise StfError(f"the scale of '{role_name or 'every role'}' is given twice; give it once")
        named.add(role_name)
        value = parse_scale(value, f"scale {item} (FACTOR or SCALE:OFFSET, e.g. fine=2.75e-5:-0.2)")
        scales.update({role: value for role in targets})
    return scales


def _check_shift(shift: Optional[Tuple[float, float]]) -> None:
    """A known coarse misregistration is two finite numbers, or None: NaN or infinity would move the coarse rasters
    off the fine grid, and the run would fail later blaming the rasters."""
    values = tuple(shift) if isinstance(shift, (tuple, list)) else ()
    if shift is not None and [finite_number(v) for v in values] != [True, True]:
        raise StfError(f"--coarse-shift must be two finite numbers DX,DY (fine pixels east and south); got {shift!r}")


SCHEDULER_ADDRESS = re.compile(r"inproc://\S+|(?:[a-z][a-z0-9+.-]*://)?(?:\[[0-9a-f:.]+\]|[^\s:/\[\]]+):\d{1,5}/?",
                               re.IGNORECASE)
"""A Dask scheduler's address: host and port, optionally after a protocol (tcp://10.0.0.5:8786, [::1]:8786), or an
in-process scheduler's inproc:// address."""


def check_cluster(request) -> None:
    """The Dask options of a fusion or series request: workers or a scheduler, not both (each request checks that
    workers is at least 1), and a scheduler's address with its port."""
    if request.workers and request.scheduler:
        raise StfError("give either --workers (a local Dask cluster) or --scheduler (a running one), not both")
    if request.scheduler and not SCHEDULER_ADDRESS.fullmatch(request.scheduler):
        raise StfError(f"--scheduler takes a Dask scheduler's address with its port, e.g. tcp://10.0.0.5:8786; got "
                       f"'{request.scheduler}'")
