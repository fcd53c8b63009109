"""The tiled prediction loop, shared by the fused output and the uncertainty map."""
from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import torch

from ..core import tiling
from ..core.device import autocast, physical_cores
from ..core.pipeline import map_ahead
from ..core.progress import Cancel, Ticker, check_cancel
from ..errors import StfError
from .. import roles
from ..inputs.aligned import AlignedInputs, PerThread, origins
from ..methods.contract import TileBatch

TileFunction = Callable[[TileBatch], torch.Tensor]
READ_AHEAD = 2
"""Batches read ahead while the method runs (at least one per reader thread): hides the reads, bounded in memory."""
GPU_READERS = 8
"""Reader threads feeding a GPU: aligning the coarse rasters and decoding the fine ones is CPU work, one batch a
thread, and the CPU is otherwise idle."""
MIN_SUB_TILE = 32
"""Smallest core side, in fine pixels, a tile that does not fit in GPU memory is split down to (the halo when
that is larger: a sub-tile's window is then mostly halo, saving little memory for much repeated work)."""
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
    split_tiles: bool = False,
) -> Iterator[Predicted]:
    """Read each batch of tiles with its halo, run the method on it, and yield the haloed predictions.

    Reader threads (`reader_threads`) read the next batches (into pinned memory for a GPU) while the method runs
    on this one.
    With a `ticker`, each batch's share of the tiles is where the method's own ticks report progress.
    When the GPU runs out of memory the batch is halved (for the rest of the run too); at one tile, with
    `split_tiles`, the tile is cut into sub-tiles of half its side, read with the same halo from its window and
    halved again while they do not fit, down to MIN_SUB_TILE or the halo (that size too for the rest of the run);
    then the method is rebuilt on the CPU with `rebuild`. Each step warns, and the results are the same: pass
    `split_tiles` only for a method whose halo covers its receptive radius (not `MethodSpec.blend`)."""
    done = 0
    fitting = _Fitting(method, device, batch, rebuild, warn, halo, split_tiles, ticker)
    pinned = device.type == "cuda"
    groups = list(tiling.batches(tiles, batch))
    workers = max(1, min(reader_threads(device), len(groups)))  # a one-batch call (a task, a view) reopens nothing

    def read(group: Sequence[tiling.Tile]) -> Tuple[List[tiling.Tile], TileBatch]:
        data = per_thread.own().read_batch(group, halo, torch.device("cpu"))
        return list(group), data.pinned() if pinned else data

    with PerThread(inputs, workers) as per_thread, \
            map_ahead(read, groups, workers, max(READ_AHEAD, workers)) as batches:
        for group, data in batches:
            check_cancel(cancel)
            if ticker is not None:
                ticker.span(done / len(tiles), (done + len(group)) / len(tiles),
                            f"tile {done + 1}/{len(tiles)}" if len(group) == 1 else
                            f"tiles {done + 1}-{done + len(group)}/{len(tiles)}")
            done += len(group)
            yield from fitting.predict(group, data, precision)


def reader_threads(device: torch.device) -> int:
    """Threads reading batches: several for a GPU; one beside a CPU computation, which has the cores."""
    return min(GPU_READERS, physical_cores()) if device.type == "cuda" else 1


class DateStack:
    """Several dates' inputs on one grid read as one: each batch holds the same tiles of every date in turn.
    The references, the same for every date, are read once a batch; only each date's coarse target is its own."""

    def __init__(self, dates: Sequence[AlignedInputs]):
        self.dates = dates
        self.shares_references = all(inputs.coarse_shift == dates[0].coarse_shift for inputs in dates)
        """Whether every date's references are the first date's: the same co-registration shift (a shift found
        per date moves each date's coarse reference too)."""

    def reopened(self, stack) -> "DateStack":
        """The dates on dataset handles of their own, for another reader thread: when the references are read
        once, the first date's inputs and only the other dates' coarse targets."""
        if not self.shares_references:
            return DateStack([inputs.reopened(stack) for inputs in self.dates])
        return DateStack([self.dates[0].reopened(stack)] +
                         [inputs.reopened(stack, [roles.COARSE_TARGET]) for inputs in self.dates[1:]])

    def read_batch(self, group: Sequence[tiling.Tile], halo: int, device) -> TileBatch:
        first = self.dates[0]
        if not self.shares_references:
            return TileBatch.joined([inputs.read_batch(group, halo, device) for inputs in self.dates])
        shared, shared_valid = first.read_roles(group, halo, device,
                                                [role for role in first.readers if role != roles.COARSE_TARGET])
        batches, where = [], origins(group, halo)
        for inputs in self.dates:
            target, valid = inputs.read_roles(group, halo, device, [roles.COARSE_TARGET])
            batches.append(TileBatch(valid=shared_valid & valid, origins=where, **shared, **target))
        return TileBatch.joined(batches)


class _Fitting:
    """Runs batches at the largest size that fits in GPU memory, a tile in sub-tiles when even one does not (if
    allowed), and on the CPU when even the smallest sub-tile does not."""

    def __init__(self, method: TileFunction, device: torch.device, batch: int,
                 rebuild: Optional[Callable[[torch.device], TileFunction]], warn: Callable[[str], None],
                 halo: int, split: bool, ticker: Optional[Ticker]):
        self.method, self.device, self.batch, self.rebuild, self.warn = method, device, batch, rebuild, warn
        self.halo, self.split, self.ticker = halo, split, ticker
        self.side: Optional[int] = None
        """Core side of the sub-tiles each tile is cut into; None while whole tiles fit."""
        self.announced: Optional[int] = None
        """The sub-tile side the last warning named."""

    def predict(self, group: List[tiling.Tile], data: TileBatch, precision: str) -> Iterator[Predicted]:
        """The group's predictions in parts of at most `self.batch` tiles (each part with every stacked date)."""
        dates = len(data.origins) // len(group)
        start = 0
        while start < len(group):
            stop = min(len(group), start + self.batch)
            part = _tiles(data, len(group), dates, start, stop)
            predicted = self._attempt(group[start], part, precision)
            if predicted is None:
                torch.cuda.empty_cache()
                self._shrink(stop - start, group[start])
                continue
            yield (group[start:stop], *predicted)
            start = stop

    def _attempt(self, tile: tiling.Tile, part: TileBatch, precision: str
                 ) -> Optional[Tuple[torch.Tensor, torch.Tensor]]:
        """The part's prediction and valid mask, whole or (at one tile) split, or None when the GPU ran out of
        memory; returning frees the failed attempt's tensors, which its traceback held."""
        try:
            return self._run(part, precision) if self.side is None else self._run_split(tile, part, precision)
        except torch.cuda.OutOfMemoryError:
            return None

    def _run(self, part: TileBatch, precision: str) -> Tuple[torch.Tensor, torch.Tensor]:
        """The method's float32 prediction over the part's windows, and their valid mask, on the device."""
        moved = part.to(self.device)
        with torch.inference_mode(), autocast(self.device, precision):
            return self.method(moved).float(), moved.valid

    def _run_split(self, tile: tiling.Tile, part: TileBatch, precision: str) -> Tuple[torch.Tensor, torch.Tensor]:
        """One tile (of every stacked date) predicted sub-tile by sub-tile, the pieces set into its haloed window."""
        pieces = tiling.pieces(tile, self.halo, self.side)
        values = None
        with _shares(self.ticker, len(pieces)) as enter:
            for index, piece in enumerate(pieces):
                enter(index)
                predicted, _ = self._run(_piece(part, piece), precision)
                if values is None:
                    values = predicted.new_empty(predicted.shape[:2] + part.valid.shape[2:])
                values[(..., *piece.into)] = predicted[(..., *piece.given)]
        if self.announced != self.side:
            self.announced = self.side
            self.warn(f"the GPU ran out of memory with a single tile; it was split into {self.side}×{self.side}-pixel "
                      f"tiles and the rest runs at that size (--tile {self.side} skips these retries)")
        return values, part.valid.to(self.device)

    def _shrink(self, size: int, tile: tiling.Tile) -> None:
        """Halve the batch; at one tile, split it finer; then move to the CPU; with none possible, one line saying
        what to lower."""
        if size > 1:
            self.batch = max(1, size // 2)
            self.warn(f"the GPU ran out of memory with {size} tiles a batch; the rest runs {self.batch} at a time")
        elif (side := self._smaller_side(tile)) is not None:
            self.batch, self.side = 1, side
        elif self.device.type != "cpu" and self.rebuild is not None:
            self.device, self.side = torch.device("cpu"), None
            self.method = self.rebuild(self.device)
            self.warn("the GPU ran out of memory with a single tile; the rest runs on the CPU (lower --tile to "
                      "keep it on the GPU)")
        else:
            raise StfError("out of memory with a single tile; lower --tile or --halo")

    def _smaller_side(self, tile: tiling.Tile) -> Optional[int]:
        """Half the current sub-tile side (at first, of the tile's longer side), or None when splitting is not
        allowed or would go below MIN_SUB_TILE or the halo."""
        side = -(-(self.side or max(tile.rows.core_size, tile.cols.core_size)) // 2)
        return side if self.split and side >= max(MIN_SUB_TILE, self.halo) else None


def _tiles(data: TileBatch, size: int, dates: int, start: int, stop: int) -> TileBatch:
    """Tiles start..stop-1 of a batch of `size` tiles, of every date when `dates` are stacked date after date
    (the batch itself when that is all of it: no copy, and its pinned memory kept)."""
    if start == 0 and stop == size:
        return data
    if dates == 1:
        return data.part(start, stop)
    return TileBatch.joined([data.part(d * size + start, d * size + stop) for d in range(dates)])


def _piece(data: TileBatch, piece: tiling.Piece) -> TileBatch:
    """A sub-tile's haloed window cut from a batch of whole tiles' windows, its origins moved to it."""
    rows, cols = piece.read
    return TileBatch(origins=tuple((row + rows.start, col + cols.start) for row, col in data.origins),
                     **{name: value[..., rows, cols].contiguous() for name, value in data.tensors().items()})


@contextmanager
def _shares(ticker: Optional[Ticker], count: int) -> Iterator[Callable[[int], None]]:
    """`enter(index)` points the ticker at that one of `count` equal parts of its span, so progress keeps rising
    through the sub-tiles of a split tile; the span is restored afterwards."""
    if ticker is None:
        yield lambda index: None
        return
    start, stop, message = ticker.start, ticker.stop, ticker.message
    step = (stop - start) / count
    try:
        yield lambda index: ticker.span(start + index * step, start + (index + 1) * step,
                                        f"{message}, sub-tile {index + 1}/{count}")
    finally:
        ticker.span(start, stop, message)


def written_parts(predicted: Predicted, halo: int) -> Iterator[Tuple[tiling.Tile, np.ndarray, np.ndarray]]:
    """(tile, values (C, h, w), valid (h, w)) of the part each tile writes, on the CPU."""
    group, values, valid = predicted
    values, valid = values.cpu().numpy(), valid.cpu().numpy()
    for index, tile in enumerate(group):
        rows, cols = tile.written(halo)
        yield tile, values[index, :, rows, cols], valid[index, 0, rows, cols]
