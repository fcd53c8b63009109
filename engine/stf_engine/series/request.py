"""Typed request and result of a series run: what the CLI, Processing and the QGIS task hand to `fuse_series`."""
from __future__ import annotations

import datetime
import numbers
from dataclasses import dataclass, field
from typing import Dict, Optional, Sequence, Tuple, Union

from .. import roles
from ..core.device import resolve_device
from ..core.fields import as_text_paths, check_bands, check_on_disk, check_switches
from ..core.options import check_real, check_whole, split_list
from ..core.tiling import DEFAULT_TILE, check_tile
from ..errors import StfError
from ..fusion.request import DEFAULT_BATCH
from ..inputs.masks import parse_mask_rules
from ..raster.reader import check_scales

DEFAULT_MAX_GAP = 60
"""Days a fine reference may lie from the target date; farther ones are not used."""
DEFAULT_SERIES_METHOD = "auto"
GPU_DATE_BATCH = 4
"""Consecutive dates with the same references fused together on a GPU: one method call a batch for all of
them (methods whose tiles depend on the references alone: STARFM, Fit-FC, ESTARFM, the deep models). The
CPU fuses one date at a time by default: stacking measured no gain there on large scenes (bench/results.md)."""


def _date_text(day: object) -> Optional[str]:
    """A date as the series reads it: text as given, a datetime.date or a whole number (20200308) as text."""
    if day is None or isinstance(day, str):
        return day
    if isinstance(day, datetime.date):
        return day.isoformat()
    if isinstance(day, numbers.Integral) and not isinstance(day, bool):
        return str(day)
    raise StfError(f"dates are text such as '2020-03-08' (or datetime.date); got {day!r}")


@dataclass
class SeriesRequest:
    """A dated series (CSV or folder, see `list_series`) and where and how to fuse it."""

    series: str
    output_dir: str
    method: str = DEFAULT_SERIES_METHOD
    date_from: Optional[str] = None
    date_to: Optional[str] = None
    dates: Tuple[str, ...] = ()
    """Only these target dates (any of the series' date spellings); empty: every coarse date in range."""
    max_gap: int = DEFAULT_MAX_GAP
    mask_rules: Dict[str, str] = field(default_factory=dict)
    """'coarse'/'fine' → how that role's mask rasters are decoded (`MASK_RULES`); 'nonzero' when not named."""
    scales: Dict[str, Union[float, Tuple[float, float]]] = field(default_factory=dict)
    """Per-role scale (or scale, offset) from stored values to reflectance, as in FusionRequest."""
    bands: Optional[Tuple[int, ...]] = None
    coarse_resolution: Optional[float] = None
    resampling: str = "bilinear"
    register: bool = False
    tile: int = DEFAULT_TILE
    batch: int = DEFAULT_BATCH
    date_batch: Optional[int] = None
    """Dates fused together (each batch then holds `batch` tiles of every one of them); memory grows with it.
    None: GPU_DATE_BATCH on a GPU, 1 on the CPU (`dates_per_batch`)."""
    device: str = "auto"
    threads: Optional[int] = None
    options: Union[Dict[str, object], str, Sequence[str]] = field(default_factory=dict)
    workers: Optional[int] = None
    """Fuse the dates on a local Dask cluster of this many worker processes (each date a task)."""
    scheduler: Optional[str] = None
    """Address of a running Dask scheduler to fuse the dates on (its workers must see the same paths)."""
    cog: bool = False
    """Write the fused images as Cloud Optimized GeoTIFFs (internal overviews; a second pass over each file)."""
    overwrite: bool = False
    """Fuse again the dates whose outputs exist; otherwise a re-run resumes where the last one stopped."""

    def __post_init__(self) -> None:
        """Refuse a mistyped or out-of-range number at once with StfError naming it, as FusionRequest does."""
        check_whole(self.max_gap, "--max-gap", 1)
        check_tile(self.tile)
        check_whole(self.batch, "--batch", 1)
        check_whole(self.date_batch, "--date-batch", 1, optional=True)
        check_whole(self.threads, "--threads", 1, optional=True)
        check_whole(self.workers, "--workers", 1, optional=True)
        check_real(self.coarse_resolution, "--coarse-res", optional=True)
        check_scales(self.scales, roles.ALL_ROLES)
        as_text_paths(self, ("series", "output_dir"))
        check_on_disk(self, ("output_dir",))
        check_switches(self, ("register", "cog", "overwrite"))
        check_bands(self.bands)
        self.date_from, self.date_to = (_date_text(day) for day in (self.date_from, self.date_to))
        self.dates = tuple(_date_text(day) for day in (split_list(self.dates) if isinstance(self.dates, str)
                                                       else self.dates))
        self.mask_rules = parse_mask_rules(self.mask_rules)

    def dates_per_batch(self) -> int:
        """How many dates are fused together: `date_batch`, or the device's default."""
        if self.date_batch is not None:
            return self.date_batch
        return GPU_DATE_BATCH if resolve_device(self.device).type == "cuda" else 1


OUTDATED = "outdated"
"""A date's status in series.json while a stopped --overwrite run had not fused it again (its files are older)."""


@dataclass(frozen=True)
class DateResult:
    """What happened to one target date (dates as YYYY-MM-DD)."""

    date: str
    status: str
    """'fused', 'kept' (done by an earlier run), 'skipped' (no usable reference: see `note`), or OUTDATED."""
    references: Tuple[str, ...] = ()
    method: str = ""
    fused: Optional[str] = None
    reliability: Optional[str] = None
    restored: float = 0.0
    """Share of the references' pixels restored (masked or missing in them) before fusing."""
    coarse_restored: float = 0.0
    """Share of the coarse target's pixels restored in time (masked or missing in it) before fusing."""
    fallback: float = 0.0
    """Share of the image predicted from the coarse target alone because of drastic change."""
    expected_error: float = 0.0
    """Mean of the reliability map (reflectance)."""
    observed_rmse: Optional[float] = None
    """When the date has its own fine image: the fusion's RMSE against it on its clear pixels."""
    note: str = ""
    inputs: Tuple[str, ...] = ()
    """The files of the series list the date depends on: its own and its references' images and masks. A re-run
    that finds other files for a date already fused refuses to keep it."""


@dataclass
class SeriesResult:
    output_dir: str
    dates: Tuple[DateResult, ...]
    manifest: str
    """series.json: dates, references, methods, validation and file names."""
    stack: Optional[str]
    """series.vrt: every fused date's bands in one multi-band raster."""
    validation: Tuple[Tuple[str, str, float, float], ...] = ()
    """(reference, predicted date, days apart, delta RMSE) between the series' own fine images."""
    seconds: float = 0.0
    warnings: Tuple[str, ...] = ()
    coarse_shift: Tuple[float, float] = (0.0, 0.0)
    """With `register`: the shift applied to the coarse images' georeference, in fine pixels east and south."""


@dataclass(frozen=True)
class KeptDates:
    """What a series run stopped midway (interrupted, cancelled, failed) leaves in its output folder on purpose:
    the dates finished by it or an earlier run, each with both files and its record in series.json, so that the
    same request run again goes on after them. The run's partial files and work folder are removed. The exception
    that stopped the run carries it as `left_behind` (when a date was finished)."""

    output_dir: str
    finished: Tuple[str, ...]
    unfinished: Tuple[str, ...]
    """Dates not fused yet (none of their files is left)."""
    overwrite: bool = False
    """The run fused its dates again: run again without that, or it fuses the kept dates once more."""

    def __str__(self) -> str:
        """What was kept, and what to do, as the rest of an `error: interrupted; …` line."""
        count = len(self.finished)
        kept = f"the {count} finished dates are" if count > 1 else f"the finished date {self.finished[0]} is"
        rest = f"fuse the {len(self.unfinished)} unfinished" if self.unfinished else "finish series.vrt"
        again = "run again without --overwrite" if self.overwrite else "run again"
        return f"{kept} kept in {self.output_dir} (see series.json), nothing partial was left; {again} to {rest}"
