"""The tiled prediction loop, shared by the fused output and the uncertainty map."""
from __future__ import annotations

from typing import Callable, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import torch

from ..core import tiling
from ..core.device import autocast
from ..core.pipeline import read_ahead
from ..core.progress import Cancel, Ticker, check_cancel
from ..errors import StfError
from .. import roles
from ..inputs.aligned import AlignedInputs, origins
from ..methods.contract import TileBatch

TileFunction = Callable[[TileBatch], torch.Tensor]
READ_AHEAD = 2
"""Batches the reader thread may have ready while the method runs: enough to hide a read, bounded in memory."""
Predicted = Tuple[Sequence[tiling.Tile], torch.Tensor, torch.Tensor]
"""(tiles of the batch, prediction (B, C, H, W) float32 over each haloed window, valid (B, 1, H, W))."""


def predict_tiles(
    inputs: AlignedInputs,
    method: TileFunction,
    tiles: Sequence[tiling.Tile],
    halo: int,
    batch: int,
    device: torch.device,
    precision: str = "fp32",
    cancel: Optional[Cancel] = None,
    ticker: Optional[Ticker] = None,
    rebuild: Optional[Callable[[torch.device], TileFunction]] = None,
    warn: Callable[[str], None] = lambda message: None,
) -> Iterator[Predicted]:
    """Read each batch of tiles with its halo, run the method on it, and yield the haloed predictions.

    A reader thread reads the next batches (into pinned memory for a GPU) while the method runs on this one.
    With a `ticker`, each batch's share of the tiles is where the method's own ticks report progress.
    When the GPU runs out of memory the batch is halved (for the rest of the run too), and at one tile the
    method is rebuilt on the CPU with `rebuild`, each step with a warning; the results are the same."""
    done = 0
    fitting = _Fitting(method, device, batch, rebuild, warn)
    pinned = device.type == "cuda"

    def read() -> Iterator[Tuple[List[tiling.Tile], TileBatch]]:
        for group in tiling.batches(tiles, batch):
            check_cancel(cancel)
            data = inputs.read_batch(group, halo, torch.device("cpu"))
            yield list(group), data.pinned() if pinned else data

    with read_ahead(read(), READ_AHEAD) as batches:
        for group, data in batches:
            check_cancel(cancel)
            if ticker is not None:
                ticker.span(done / len(tiles), (done + len(group)) / len(tiles),
                            f"tile {done + 1}/{len(tiles)}" if len(group) == 1 else
                            f"tiles {done + 1}-{done + len(group)}/{len(tiles)}")
            done += len(group)
            yield from fitting.predict(group, data, precision)


class DateStack:
    """Several dates' inputs on one grid read as one: each batch holds the same tiles of every date in turn.
    The references, the same for every date, are read once a batch; only each date's coarse target is its own."""

    def __init__(self, dates: Sequence[AlignedInputs]):
        self.dates = dates

    def read_batch(self, group: Sequence[tiling.Tile], halo: int, device) -> TileBatch:
        first = self.dates[0]
        if any(inputs.coarse_shift != first.coarse_shift for inputs in self.dates):  # registered per date
            return TileBatch.joined([inputs.read_batch(group, halo, device) for inputs in self.dates])
        shared, shared_valid = first.read_roles(group, halo, device,
                                                [role for role in first.readers if role != roles.COARSE_TARGET])
        batches = []
        for inputs in self.dates:
            target, valid = inputs.read_roles(group, halo, device, [roles.COARSE_TARGET])
            batches.append(TileBatch(valid=shared_valid & valid, origins=origins(group, halo), **shared, **target))
        return TileBatch.joined(batches)


class _Fitting:
    """Runs batches at the largest size that fits in GPU memory, and on the CPU when even one tile does not."""

    def __init__(self, method: TileFunction, device: torch.device, batch: int,
                 rebuild: Optional[Callable[[torch.device], TileFunction]], warn: Callable[[str], None]):
        self.method, self.device, self.batch, self.rebuild, self.warn = method, device, batch, rebuild, warn

    def predict(self, group: List[tiling.Tile], data: TileBatch, precision: str) -> Iterator[Predicted]:
        """The group's predictions in parts of at most `self.batch` tiles (each part with every stacked date)."""
        dates = len(data.origins) // len(group)
        start = 0
        while start < len(group):
            stop = min(len(group), start + self.batch)
            part = _tiles(data, len(group), dates, start, stop)
            try:
                moved = part.to(self.device)
                with torch.inference_mode(), autocast(self.device, precision):
                    predicted = self.method(moved).float()
            except torch.cuda.OutOfMemoryError:
                moved = predicted = None
                torch.cuda.empty_cache()
                self._shrink(stop - start)
                continue
            yield group[start:stop], predicted, moved.valid
            start = stop

    def _shrink(self, size: int) -> None:
        """Halve the batch; at one tile, move to the CPU; with neither possible, one line saying what to lower."""
        if size > 1:
            self.batch = max(1, size // 2)
            self.warn(f"the GPU ran out of memory with {size} tiles a batch; the rest runs {self.batch} at a time")
        elif self.device.type != "cpu" and self.rebuild is not None:
            self.device = torch.device("cpu")
            self.method = self.rebuild(self.device)
            self.warn("the GPU ran out of memory with a single tile; the rest runs on the CPU (lower --tile to "
                      "keep it on the GPU)")
        else:
            raise StfError("out of memory with a single tile; lower --tile or --halo")



def _tiles(data: TileBatch, size: int, dates: int, start: int, stop: int) -> TileBatch:
    """Tiles start..stop-1 of a batch of `size` tiles, of every date when `dates` are stacked date after date."""
    if dates == 1:
        return data.part(start, stop)
    return TileBatch.joined([data.part(d * size + start, d * size + stop) for d in range(dates)])


def written_parts(predicted: Predicted, halo: int) -> Iterator[Tuple[tiling.Tile, np.ndarray, np.ndarray]]:
    """(tile, values (C, h, w), valid (h, w)) of the part each tile writes, on the CPU."""
    group, values, valid = predicted
    values, valid = values.cpu().numpy(), valid.cpu().numpy()
    for index, tile in enumerate(group):
        rows, cols = tile.written(halo)
        yield tile, values[index, :, rows, cols], valid[index, 0, rows, cols]
