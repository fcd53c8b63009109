"""Time-series training data: dated coarse/fine(/pan) rasters → (coarse at t, fine at another date,
coarse at that date, pan at t) → fine at t, for every ordered pair of dates; pixels a date's masks flag are left
out of the scenes that read the flagged image."""
from __future__ import annotations

from contextlib import ExitStack
from typing import Dict, List, Optional, Tuple

import numpy as np
from rasterio.windows import Window

from .. import roles
from ..core.progress import Warnings
from ..errors import StfError
from ..inputs.aligned import is_units_warning
from ..inputs.masks import DEFAULT_MASK_RULE, MASK_ROLES, open_mask
from ..inputs.series_list import Dated, list_series, parse_date
from ..models.base import ModelDef
from ..raster.grid import Grid
from .request import TrainingRequest
from .scenes import Aligned, Scene, read_aligned

Flags = Dict[Tuple[str, str], np.ndarray]
"""(date as YYYY-MM-DD, 'coarse' or 'fine') → where that image's mask flags it unusable, on the fine grid."""


def series_scenes(request: TrainingRequest, model: ModelDef, warnings: Warnings):
    """(scenes by target date (YYYY-MM-DD), roles used, first date's Aligned) for every ordered pair of distinct
    dates; the requested dates may be written in any of the series' spellings. What the listing skips, what reading
    each date notices (`pass_on`) and masks that leave part of the grid uncovered are said in `warnings`."""
    entries = list_series(request.series, warnings=warnings)
    with_pan = all(e.pan for e in entries)
    read: Dict[str, Aligned] = {}
    flags: Flags = {}
    for entry in entries:
        given = {roles.COARSE_TARGET: entry.coarse, roles.FINE_REFERENCE: entry.fine}
        if with_pan and roles.PAN in model.optional:
            given[roles.PAN] = entry.pan
        read[entry.day.isoformat()] = aligned = read_aligned(given, request, model.coarse_resampling)
        first = read[entries[0].day.isoformat()]
        if aligned.grid != first.grid:
            raise StfError(
                f"the fine raster of {entry.date} is not on the grid of {entries[0].date}'s; align them first"
            )
        pass_on(aligned.warnings, None if aligned is first else entry.date, warnings)
        flags.update(read_masks(entry, aligned.grid, request.mask_rules, warnings))
    available = {roles.COARSE_REFERENCE} | ({roles.PAN} if with_pan else set())
    used = model.roles_for(available)
    targets = {parse_date(d).isoformat() for d in request.target_dates} if request.target_dates else set(read)
    held_out = {validation_day(request)} - {None}
    unknown = (targets | held_out) - set(read)
    if unknown:
        raise StfError(f"date(s) {', '.join(sorted(unknown))} are not in the series ({', '.join(read)})")
    scenes: Dict[str, List[Scene]] = {}
    for date in targets | held_out:
        at = read[date]
        for other, ref in read.items():
            if other == date:
                continue
            inputs = {
                roles.COARSE_TARGET: at.arrays[roles.COARSE_TARGET],
                roles.FINE_REFERENCE: ref.arrays[roles.FINE_REFERENCE],
                roles.COARSE_REFERENCE: ref.arrays[roles.COARSE_TARGET],
                roles.PAN: at.arrays.get(roles.PAN),
            }
            inputs = {role: inputs[role] for role in used}
            valid = usable(at.valid & ref.valid, flags, date, other, roles.COARSE_REFERENCE in used)
            scene = Scene(inputs, at.arrays[roles.FINE_REFERENCE], valid, f"{date} from {other}")
            scenes.setdefault(date, []).append(scene)
    return scenes, used, first


def validation_day(request: TrainingRequest) -> Optional[str]:
    """The held-out date as the scenes are keyed (YYYY-MM-DD), None when none is asked for."""
    return parse_date(request.validation_date).isoformat() if request.validation_date else None


def pass_on(noticed: List[str], date: Optional[str], warnings: Warnings) -> None:
    """What reading a date noticed, into `warnings`: the first date's as it is (the series' own check), a later
    date's named by its date; a units warning once for the series (its images share their units)."""
    units_said = any(is_units_warning(said) for said in warnings)
    for note in noticed:
        if not (units_said and is_units_warning(note)):
            warnings.add(note if date is None else f"{date}: {note}")


def read_masks(entry: Dated, grid: Grid, rules: Dict[str, str], warnings: Warnings) -> Flags:
    """The date's coarse and fine masks read whole on the fine grid (nearest) and decoded by the role's rule, as
    series fusion reads them. Training co-registers no coarse image, so a coarse mask is not shifted. The part of
    the grid a mask does not cover counts as flagged, and `warnings` says so."""
    day, flags = entry.day.isoformat(), {}
    with ExitStack() as stack:
        for kind in MASK_ROLES:
            path = getattr(entry, f"{kind}_mask")
            if not path:
                continue
            reader = open_mask(stack, path, f"the {kind} mask of {day}", grid, rules.get(kind, DEFAULT_MASK_RULE))
            note = reader.coverage_note(path)
            if note:
                warnings.add(note)
            flags[(day, kind)] = reader.read(Window(0, 0, grid.width, grid.height))
    return flags


def usable(valid: np.ndarray, flags: Flags, date: str, other: str, coarse_reference: bool) -> np.ndarray:
    """`valid` less what a mask flags in the images the scene "`date` from `other`" reads: the target date's coarse
    and fine images, the reference date's fine image and, when the model takes the coarse reference, its coarse."""
    read = [(date, "coarse"), (date, "fine"), (other, "fine")] + ([(other, "coarse")] if coarse_reference else [])
    for key in read:
        if key in flags:
            valid = valid & ~flags[key]
    return valid
