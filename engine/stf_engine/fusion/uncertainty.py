"""The uncertainty map: the error to expect at each pixel, in the prediction's own units, from what the scene shows.

    expected error = sqrt(change² · texture / mean texture + disagreement²) · departure / mean departure

- change: the coarse change |C2 − C1| (RMS over bands; with two pairs, the smaller of the two). A prediction
  must bridge it, and how it is split among the fine pixels inside a coarse pixel is what no input shows.
- texture: the local standard deviation of the fine reference over 3×3 pixels (RMS over bands), divided by its
  scene mean: the unknown part of the change falls on edges and mixed pixels more than on uniform fields.
- disagreement: the spread (standard deviation, RMS over bands) of the run's fused output, read back, and the
  classic methods the inputs allow (`auto`'s candidates): where methods that assume different things
  disagree, at least some of them are wrong.
- departure: |F1 − C1| (RMS over bands; with two pairs, the smaller of the two), divided by its scene mean: a
  fine pixel unlike its coarse pixel at the reference date is another surface than most of that coarse pixel,
  so its change is the least like the coarse change that every method spreads over the coarse pixel.

Every term is computed per tile with a halo that covers each method's reach, and the scene means in a survey
of the whole scene, so the map does not depend on the tiling.
Measured on the bench's real cases (bench/results.md): its mean is 0.90–0.93× the real RMSE, and its Spearman
correlation with the real error is 0.40 (Shenzhen) and 0.28 (Kranj); the departure raised them from 0.35 and 0.24.
"""
from __future__ import annotations

import dataclasses
from contextlib import closing
from typing import Iterator, Optional, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from rasterio.windows import Window

from ..core import tiling
from ..core.progress import Cancel, Progress, Ticker, stage
from ..methods.auto import candidates
from ..methods.contract import TileBatch
from ..methods.ensemble import ensemble, member_functions, own
from .check import Plan
from .predict import predict_tiles, written_parts
from .surveys import run_surveys

TEXTURE_WINDOW = 3
"""Side of the window of the fine reference's local standard deviation (fine pixels)."""


def local_std(image: torch.Tensor, valid: torch.Tensor, window: int = TEXTURE_WINDOW) -> torch.Tensor:
    """(B, 1, H, W) standard deviation over the valid pixels of a window×window neighbourhood, RMS over bands."""
    weights = valid.to(image.dtype)
    pool = lambda t: F.avg_pool2d(t, window, stride=1, padding=window // 2, count_include_pad=True)  # noqa: E731
    count = pool(weights).clamp_min(1e-12)
    mean = pool(image * weights) / count
    variance = (pool(image * image * weights) / count - mean * mean).clamp_min(0.0)
    return variance.mean(dim=1, keepdim=True).sqrt() * (weights > 0)


def coarse_change(batch: TileBatch, reference: torch.Tensor) -> torch.Tensor:
    """(B, 1, H, W) RMS over bands of C2 − C1 (`reference`: the batch's C1, given or simulated); with a second
    pair, the smaller of the two changes per pixel."""
    change = _rms(batch.coarse_target - reference)
    if batch.coarse_reference_2 is not None:
        change = torch.minimum(change, _rms(batch.coarse_target - batch.coarse_reference_2))
    return change


def departure(batch: TileBatch, reference: torch.Tensor) -> torch.Tensor:
    """(B, 1, H, W) RMS over bands of F1 − C1 (`reference`: C1); with a second pair, the smaller of it and
    F3 − C3 per pixel."""
    gap = _rms(batch.fine_reference - reference)
    if batch.fine_reference_2 is not None and batch.coarse_reference_2 is not None:
        gap = torch.minimum(gap, _rms(batch.fine_reference_2 - batch.coarse_reference_2))
    return gap


def _rms(values: torch.Tensor) -> torch.Tensor:
    return values.float().pow(2).mean(dim=1, keepdim=True).sqrt()


class UncertaintyEstimator:
    """Computes the expected error of a run's fused output (see the module doc) tile by tile."""

    def __init__(self, plan: Plan, fused):
        """`fused`: the run's output, open for reading; the other methods are surveyed and built here."""
        self.plan, self.fused = plan, fused
        given = list(plan.inputs.readers)
        self.members = [spec for spec in candidates(given) if spec.name != plan.spec.name]
        # A run of several methods' mean ("starfm+fsdaf", auto's pick) has surveyed them already, by name.
        surveyed = {spec.name: plan.context.survey[spec.name] for spec in self.members
                    if spec.name in plan.context.survey}
        unsurveyed = ensemble([spec for spec in self.members if spec.name not in surveyed])
        context = run_surveys(unsurveyed, plan.context, plan.request, plan.inputs)
        context = dataclasses.replace(context, survey={**context.survey, **surveyed})
        self.others = member_functions(self.members, context)
        self.halo = max([TEXTURE_WINDOW // 2] + [spec.halo(own(context, spec)) for spec in self.members])
        self.mean_texture, self.mean_departure = self._scene_means()

    def describe(self) -> str:
        names = ", ".join([self.plan.spec.name] + [spec.name for spec in self.members])
        return ("expected error: sqrt(|C2 - C1|^2 * fine texture / its scene mean + disagreement^2) * |F1 - C1| / "
                f"its scene mean, the texture a {TEXTURE_WINDOW}x{TEXTURE_WINDOW} local standard deviation of the fine "
                f"reference, the disagreement the spread of {names}")

    def _scene_means(self) -> Tuple[float, float]:
        """Scene means of the fine reference's local standard deviation and of its departure from the coarse
        reference, over the valid pixels."""
        ratio = self.plan.inputs.ratio
        totals, count = torch.zeros(2, dtype=torch.float64), 0
        for block in self.plan.inputs.read_blocks(ratio, self.plan.device):
            self.plan.context.tick()
            valid = block.valid.bool()
            gap = departure(block, block.coarse_reference_or_simulated(ratio))
            for index, term in enumerate((local_std(block.fine_reference.float(), valid), gap)):
                totals[index] += term[valid].double().sum().cpu()
            count += int(valid.sum())
        texture, gap = (totals / count).tolist() if count else (0.0, 0.0)
        return texture, gap

    def terms(self, batch: TileBatch) -> torch.Tensor:
        """(B, 2 + k·C, H, W) on one batch of haloed tiles: the change term change² · texture / mean texture, the
        departure / mean departure, then the k other methods' predictions; the fused output joins them per pixel in
        `parts`."""
        reference = batch.coarse_reference_or_simulated(self.plan.inputs.ratio)  # simulated once for both terms
        texture = local_std(batch.fine_reference.float(), batch.valid.bool())
        gap = departure(batch, reference).float()
        relative = texture / self.mean_texture if self.mean_texture > 0 else torch.ones_like(texture)
        scaling = gap / self.mean_departure if self.mean_departure > 0 else torch.ones_like(gap)
        return torch.cat([coarse_change(batch, reference).pow(2) * relative, scaling]
                         + [other(batch).float() for other in self.others], dim=1)

    def parts(self, progress: Progress, cancel: Optional[Cancel] = None
              ) -> Iterator[Tuple[tiling.Tile, np.ndarray]]:
        """(tile, (1, h, w) float32 expected error, NaN where an input or the output has no data) for every tile.
        The other methods' own ticks report within each batch's share of `progress` (a batch takes them all: tens of
        seconds on a large one)."""
        plan, done = self.plan, 0
        ticker = plan.context.tick if isinstance(plan.context.tick, Ticker) else None
        if ticker is not None:
            ticker.progress = stage(progress, 0.0, 1.0, "uncertainty")
        # Out of memory: smaller batches, then split tiles (the halo covers every term's reach); no CPU rebuild.
        batches = predict_tiles(plan.inputs, self.terms, plan.tiles, self.halo, plan.request.batch, plan.device,
                                plan.request.precision, cancel, ticker, warn=plan.warnings.add, split_tiles=True)
        with closing(batches):  # its reader threads joined before a failure leaves (see fusion.run._predict)
            for predicted in batches:
                for tile, values, valid in written_parts(predicted, self.halo):
                    window = Window(tile.cols.write_start, tile.rows.write_start, values.shape[2], values.shape[1])
                    fused = self.fused.read(window=window, masked=True)
                    valid = valid & ~np.ma.getmaskarray(fused).any(axis=0)
                    own = np.where(valid, plan.inputs.fine.units.to_reflectance(fused.data), 0.0)
                    predictions = np.concatenate([own[None].astype(np.float32), values[2:].reshape(-1, *own.shape)])
                    disagreement = predictions.var(axis=0).mean(axis=0, keepdims=True)
                    error = np.sqrt(values[:1] + disagreement) * values[1:2]
                    yield tile, np.where(valid, error, np.nan).astype(np.float32)
                done += len(predicted[0])
                progress(done / len(plan.tiles), f"uncertainty, tile {done}/{len(plan.tiles)}")
