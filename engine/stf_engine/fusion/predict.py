"""The tiled prediction loop, shared by the fused output and the uncertainty map."""
from __future__ import annotations

from typing import Callable, Iterator, Optional, Sequence, Tuple

import numpy as np
import torch

from ..core import tiling
from ..core.device import autocast
from ..core.progress import Cancel, Ticker, check_cancel
from ..inputs.aligned import AlignedInputs
from ..methods.contract import TileBatch

TileFunction = Callable[[TileBatch], torch.Tensor]
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
) -> Iterator[Predicted]:
    """Read each batch of tiles with its halo, run the method on it, and yield the haloed predictions.

    With a `ticker`, each batch's share of the tiles is where the method's own ticks report progress."""
    done = 0
    for group in tiling.batches(tiles, batch):
        check_cancel(cancel)
        if ticker is not None:
            ticker.span(done / len(tiles), (done + len(group)) / len(tiles),
                        f"tile {done + 1}/{len(tiles)}" if len(group) == 1 else
                        f"tiles {done + 1}-{done + len(group)}/{len(tiles)}")
        done += len(group)
        data = inputs.read_batch(group, halo, device)
        with torch.inference_mode(), autocast(device, precision):
            predicted = method(data).float()
        yield group, predicted, data.valid


def written_parts(predicted: Predicted, halo: int) -> Iterator[Tuple[tiling.Tile, np.ndarray, np.ndarray]]:
    """(tile, values (C, h, w), valid (h, w)) of the part each tile writes, on the CPU."""
    group, values, valid = predicted
    values, valid = values.cpu().numpy(), valid.cpu().numpy()
    for index, tile in enumerate(group):
        rows, cols = tile.written(halo)
        yield tile, values[index, :, rows, cols], valid[index, 0, rows, cols]
