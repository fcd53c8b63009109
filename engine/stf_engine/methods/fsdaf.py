"""FSDAF (Zhu et al. 2016, Remote Sensing of Environment 172:165-177), written from the paper, in torch.

Scene-wide pre-passes (in bounded memory over windows aligned with the coarse pixels):
1. Unsupervised classes of the fine reference: k-means on a regular sample of its pixels (the reference
   survey, which a series reuses for every date with that reference).
2. Each class's temporal change ΔF(c), per band, by unmixing the coarse change: over the coarse pixels with
   complete data, C2 − C1 = Σ_c f_c·ΔF(c) with f_c the class fractions, solved by least squares (lightly
   ridge-regularised) and kept within the range of the coarse changes.
Per tile:
3. Temporal prediction F_TP = F1 + ΔF(class).
4. Spatial prediction F_SP: the coarse target interpolated to the fine grid (the engine's bilinear alignment
   stands in for the paper's thin-plate spline).
5. The coarse residual R = (C2 − C1) − mean(ΔF(class)) per coarse pixel, distributed back guided by the
   homogeneity index (share of the valid pixels around, one coarse pixel wide, in the same class): where the
   class is homogeneous it follows F_SP − F_TP, elsewhere it is even (see residual.py for the weights).
6. The total change is smoothed over similar pixels (same class, inverse-distance weights) in a moving
   window and added to F1.
Because the classes and class changes come from the whole scene, tiled output equals whole-raster output.
"""
from __future__ import annotations

from typing import Callable, Dict, Iterable

import torch

from .. import roles
from ..core.options import Option
from .blocks import block_means, expand
from .contract import MethodContext, MethodSpec, TileBatch, option_reader, tick_within
from .fitfc import similar_mean
from .residual import distribute, homogeneity

OPTIONS = {
    "classes": Option(6, 2, 32, "unsupervised classes of the fine reference"),
    "window": Option(0, 0, 101, "smoothing window in fine pixels; 0 = one coarse pixel plus one"),
}
SAMPLE_PIXELS = 60_000
KMEANS_ITERATIONS = 25
SAME_CLASS = 0.5
"""Class labels closer than this are the same class (homogeneity and smoothing compare labels as values)."""
RIDGE = 1e-4
"""Relative ridge weight of the unmixing, against unstable class changes for rare classes."""
DISTRIBUTION_SHARE = 0.3
"""Share of a batch's progress the per-tile residual distribution takes; smoothing over same-class pixels, the rest."""


_option = option_reader(OPTIONS)


def _half(context: MethodContext) -> int:
    return (_option(context, "window") or context.ratio + 1) // 2


def _halo(context: MethodContext) -> int:
    return 2 * context.ratio + context.ratio // 2 + _half(context)


def kmeans(samples: torch.Tensor, classes: int, seed: int = 0, tick: Callable[[], None] = lambda: None
           ) -> torch.Tensor:
    """(classes, C) centres of (N, C) samples: k-means++ start from a seeded generator, then Lloyd steps;
    `tick` runs before each step (a cancel check: the steps take seconds on a large sample)."""
    generator = torch.Generator().manual_seed(seed)
    centres = [samples[torch.randint(len(samples), (1,), generator=generator)].squeeze(0)]
    for _ in range(1, classes):
        tick()
        distance = torch.cdist(samples, torch.stack(centres)).min(dim=1).values ** 2
        pick = torch.multinomial(distance / distance.sum().clamp_min(1e-30) + 1e-12, 1, generator=generator)
        centres.append(samples[pick].squeeze(0))
    centres = torch.stack(centres)
    for _ in range(KMEANS_ITERATIONS):
        tick()
        labels = torch.cdist(samples, centres).argmin(dim=1)
        for k in range(classes):
            members = samples[labels == k]
            if len(members):
                centres[k] = members.mean(dim=0)
    return centres


def label(fine: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
    """(B, H, W) class of each pixel of (B, C, H, W): its nearest centre."""
    batch, bands, height, width = fine.shape
    flat = fine.permute(0, 2, 3, 1).reshape(-1, bands)
    return torch.cdist(flat, centres.to(flat)).argmin(dim=1).reshape(batch, height, width)


def classes_survey(context: MethodContext, scene: Callable[[], Iterable[TileBatch]]) -> Dict[str, object]:
    """The class centres: k-means on a regular sample of the fine reference (two passes, bounded memory).
    It reads the reference only, so a series computes it once per reference for all its target dates."""
    total, chunks = 0, []
    for batch in scene():  # a pass over the masks: the sampling step
        context.tick()
        total += int(batch.valid.sum())
    step = max(1, total // SAMPLE_PIXELS)
    for batch in scene():
        context.tick()
        chunks.append(batch.fine_reference[0][:, batch.valid[0, 0]].T[::step].cpu())
    samples = torch.cat(chunks).double()  # on the CPU: the same centres on any device
    return {"centres": kmeans(samples, _option(context, "classes"), tick=context.tick).float()}


def survey(context: MethodContext, scene: Callable[[], Iterable[TileBatch]]) -> Dict[str, object]:
    """Each class's change by unmixing the coarse change, summed over coarse pixels only so memory does not
    grow with the scene; the centres come from `classes_survey`, the reference survey."""
    ratio, classes = context.ratio, _option(context, "classes")
    centres = context.survey["centres"]
    gram = torch.zeros(classes, classes, dtype=torch.float64)
    moment = torch.zeros(classes, context.bands, dtype=torch.float64)
    low, high = None, None
    for batch in scene():
        context.tick()
        valid, origin = batch.valid[0, 0], batch.origins[0]
        labels = label(batch.fine_reference, centres)[0]
        onehot = torch.nn.functional.one_hot(labels, classes).permute(2, 0, 1).to(batch.fine_reference.dtype)
        fractions, counts = block_means(onehot, valid, ratio, origin)
        change, _ = block_means(batch.coarse_target[0] - batch.coarse_reference_or_simulated(ratio)[0], valid, ratio, origin)
        complete = counts >= ratio * ratio
        a = fractions[:, complete].T.double().cpu()  # the sums stay on the CPU, beside the small solve
        b = change[:, complete].T.double().cpu()
        gram += a.T @ a
        moment += a.T @ b
        if len(b):
            low = b.min(dim=0).values if low is None else torch.minimum(low, b.min(dim=0).values)
            high = b.max(dim=0).values if high is None else torch.maximum(high, b.max(dim=0).values)
    ridge = RIDGE * gram.diagonal().mean().clamp_min(1e-12) * torch.eye(classes, dtype=torch.float64)
    class_change = torch.linalg.solve(gram + ridge, moment)
    if low is not None:
        class_change = torch.maximum(torch.minimum(class_change, high), low)
    return {"class_change": class_change.float()}


def _build(context: MethodContext):
    ratio, half = context.ratio, _half(context)
    centres = context.survey["centres"].to(context.device)
    class_change = context.survey["class_change"].to(context.device)

    def run(batch: TileBatch) -> torch.Tensor:
        f1, c2 = batch.fine_reference, batch.coarse_target
        c1 = batch.coarse_reference_or_simulated(ratio)
        labels = label(f1, centres)
        change_tp = class_change.to(f1.dtype)[labels].permute(0, 3, 1, 2)
        temporal = f1 + change_tp
        same_class = homogeneity(labels[:, None].to(f1.dtype), batch.valid, SAME_CLASS, ratio // 2)
        total = []
        for index, origin in enumerate(batch.origins):
            context.tick(DISTRIBUTION_SHARE * index / max(1, len(batch.origins)))
            valid = batch.valid[index, 0]
            coarse_change, _ = block_means(c2[index] - c1[index], valid, ratio, origin)
            tp_change, _ = block_means(change_tp[index], valid, ratio, origin)
            residual = expand(coarse_change - tp_change, ratio, origin, f1.shape[-2:])
            spread = distribute(residual, c2[index] - temporal[index], same_class[index], valid, ratio, origin)
            total.append(change_tp[index] + spread)
        guide = labels[:, None].to(f1.dtype)  # similar pixels: the same class
        smoothed = similar_mean(torch.stack(total), guide, batch.valid, torch.tensor(SAME_CLASS), half,
                                tick=tick_within(context.tick, DISTRIBUTION_SHARE, 1.0))
        return f1 + smoothed

    return run


SPECS = (
    MethodSpec(
        name="fsdaf",
        description="FSDAF (Zhu et al. 2016): class-wise change by unmixing the coarse change, residuals "
        "distributed by homogeneity; handles land-cover change",
        required=(roles.COARSE_TARGET, roles.FINE_REFERENCE),
        optional=(roles.COARSE_REFERENCE,),
        halo=_halo,
        build=_build,
        options=OPTIONS,
        survey=survey,
        reference_survey=classes_survey,
    ),
)
