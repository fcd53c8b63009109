"""Every date of a series read onto one fine grid, in reflectance, with its usable-pixel mask.

The grid is the first fine image's; every other fine image must lie on it. Coarse images are warped onto it
as in a single run (same band map, units, resampling and co-registration shift, found once on the first pair).
"""
from __future__ import annotations

import bisect
import datetime
from contextlib import ExitStack
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from rasterio.windows import Window

from .. import roles
from ..core.recent import MAX_OPEN, RecentlyOpened
from ..errors import StfError
from ..inputs.aligned import Alignment, open_inputs
from ..inputs.masks import DEFAULT_MASK_RULE, open_mask
from ..inputs.series_list import Dated
from ..raster.grid import Grid
from ..raster.open import open_on_grid
from ..raster.reader import AlignedRaster
from ..raster.windows import block_windows
from ..raster.writer import Encoding
from .request import SeriesRequest


class SeriesScene:
    """Readers for the series' coarse and fine images (and their masks), opened once and closed with `stack`."""

    def __init__(self, entries: Sequence[Dated], request: SeriesRequest, stack: ExitStack,
                 coarse_shift: Optional[Tuple[float, float]] = None):
        """`coarse_shift`: the co-registration shift (fine pixels) another scene of this series found, so a Dask
        date task does not estimate it again."""
        self.entries = {e.day.isoformat(): e for e in entries}
        """The series' dates by YYYY-MM-DD."""
        self.request = request
        first = next((e for e in entries if e.coarse and e.fine), None)
        if first is None:
            raise StfError(f"the series {request.series} has no date with both a coarse and a fine image")
        alignment = Alignment(bands=request.bands, scales=_pair_scales(request.scales),
                              coarse_resolution=request.coarse_resolution, resampling=request.resampling,
                              register=request.register, coarse_shift=coarse_shift)
        probe = open_inputs({roles.COARSE_TARGET: first.coarse, roles.FINE_REFERENCE: first.fine}, alignment, stack)
        self.coarse_shift: Tuple[float, float] = probe.coarse_shift
        self.grid: Grid = probe.grid
        self.ratio: int = probe.ratio
        self.encoding: Encoding = probe.fine
        self.bands: int = probe.bands
        self.warnings: List[str] = list(probe.warnings)
        east, south = probe.coarse_shift
        self._shift = (east * self.grid.transform.a, south * self.grid.transform.e)
        self._coarse_bands = probe.readers[roles.COARSE_TARGET].bands
        self.open_limit = open_limit([e.day for e in entries], request.max_gap)
        """Files of one kind kept open at once: what one window of the restoration reads."""
        self._readers = stack.enter_context(RecentlyOpened(self.open_limit))
        self._masks = stack.enter_context(RecentlyOpened(self.open_limit))

    @property
    def coarse_resolution(self) -> float:
        """The coarse pixel size in map units, for runs on rasters already brought onto the fine grid."""
        return self.ratio * self.grid.resolution

    def read(self, kind: str, date: str, window: Window) -> Tuple[np.ndarray, np.ndarray]:
        """(reflectance (C, h, w), usable (h, w)) of the `kind` ('coarse' or 'fine') image of `date`."""
        data, usable = self._reader(kind, date).read(window)
        mask = self._mask(kind, date)
        if mask is not None:
            usable &= ~mask.read(window)
        return data, usable

    def has(self, kind: str, date: str) -> bool:
        return bool(getattr(self.entries[date], kind))

    def _reader(self, kind: str, date: str) -> AlignedRaster:
        return self._readers.get((kind, date), lambda stack: self._open(stack, kind, date))

    def _open(self, stack: ExitStack, kind: str, date: str) -> AlignedRaster:
        path = getattr(self.entries[date], kind)
        label = f"the {kind} image of {date}"
        if kind == "fine":
            reader = open_on_grid(stack, path, label, self.grid, self.request.scales.get(roles.FINE_REFERENCE),
                                  "nearest")
            if not self.grid.same_as(reader.dataset):
                raise StfError(f"{label} is not on the grid of the series' first fine image; align it first: {path}")
        else:
            reader = open_on_grid(stack, path, label, self.grid, self.request.scales.get(roles.COARSE_TARGET),
                                  self.request.resampling, self._coarse_bands, self._shift)
        if reader.count != self.bands:
            raise StfError(f"{label} has {reader.count} bands but the fine images have {self.bands}; "
                           f"choose its bands with --bands: {path}")
        return reader

    def _mask(self, kind: str, date: str):
        """The `kind` mask of `date` on the grid, moved by the same co-registration shift as its image (a coarse
        mask flags the coarse image's pixels, wherever the shift puts them), or None when the date has none."""
        path = getattr(self.entries[date], f"{kind}_mask")
        if not path:
            return None
        rule = self.request.mask_rules.get(kind, DEFAULT_MASK_RULE)
        shift = self._shift if kind == "coarse" else (0.0, 0.0)

        def opened(stack):
            reader = open_mask(stack, path, f"the {kind} mask of {date}", self.grid, rule, shift)
            note = reader.coverage_note(path)
            if note and note not in self.warnings:
                self.warnings.append(note)
            return reader

        return self._masks.get((kind, date), opened)


def open_limit(days: Sequence[datetime.date], max_gap: int) -> int:
    """The most images one window of a restoration pass may read, at least MAX_OPEN: a date and every other
    within `max_gap` days of it. With fewer kept open, each window would reopen them all (slow: every coarse
    image is warped); the count is bounded by the gap, not by the series' length."""
    ordinals = sorted(day.toordinal() for day in days)
    widest = max((bisect.bisect_right(ordinals, day + max_gap) - bisect.bisect_left(ordinals, day - max_gap)
                  for day in ordinals), default=0)
    return max(MAX_OPEN, widest)


def _pair_scales(scales) -> Dict[str, object]:
    """The series' per-role scales for the probe pair (coarse target and fine reference)."""
    return {role: scales[role] for role in (roles.COARSE_TARGET, roles.FINE_REFERENCE) if role in scales}


def work_windows(grid: Grid, ratio: int) -> List[Window]:
    """Block-aligned windows of bounded size over the grid, for passes that must see whole coarse pixels."""
    return list(block_windows(grid.height, grid.width, ratio))
