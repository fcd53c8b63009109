"""Time-series training data: dated coarse/fine(/pan) rasters → (coarse at t, fine at another date,
coarse at that date, pan at t) → fine at t, for every ordered pair of dates."""
from __future__ import annotations

from typing import Dict, List, Optional

from .. import roles
from ..errors import StfError
from ..inputs.series_list import list_series, parse_date
from ..models.base import ModelDef
from .request import TrainingRequest
from .scenes import Aligned, Scene, read_aligned


def series_scenes(request: TrainingRequest, model: ModelDef):
    """(scenes by target date (YYYY-MM-DD), roles used, first date's Aligned) for every ordered pair of distinct
    dates; the requested dates may be written in any of the series' spellings."""
    entries = list_series(request.series)
    with_pan = all(e.pan for e in entries)
    read: Dict[str, Aligned] = {}
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
            scene = Scene(inputs, at.arrays[roles.FINE_REFERENCE], at.valid & ref.valid, f"{date} from {other}")
            scenes.setdefault(date, []).append(scene)
    return scenes, used, first


def validation_day(request: TrainingRequest) -> Optional[str]:
    """The held-out date as the scenes are keyed (YYYY-MM-DD), None when none is asked for."""
    return parse_date(request.validation_date).isoformat() if request.validation_date else None
