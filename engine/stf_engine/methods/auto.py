"""`auto`: score the candidate methods on the scene itself by Wald's reduced-resolution protocol, run the winner.

The scene is taken one coarse step down: the coarse pixels' means become the fine images of a smaller world
(the coarse target's means are its truth), and those means averaged once more over r'×r' blocks become its
coarse images. Every candidate predicts that world's coarse target from its fine and coarse references; the
one with the lowest RMSE there runs on the real scene; so does the mean of the best k candidates when it scores
better, or when it is within 1% (TIE) of the best (a mean of methods whose errors partly
cancel is the safer bet then). `delta` is always a candidate, so `auto` never picks a method that does worse
than the baseline on the scene's own evidence. Blending methods per pixel by local skill was not measured to
do better than this mean, so it is not offered.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Mapping, Optional, Sequence, Tuple

import numpy as np
import torch

from .. import roles
from ..core.blocks import block_mean
from .blocks import interpolate
from .catalog import get_method, resolved_options
from .contract import MethodContext, MethodSpec, TileBatch, tick_within

CANDIDATES = ("delta", "starfm", "fitfc", "fsdaf", "estarfm")
"""Classic methods `auto` tries, those the inputs allow; deep models join only when weights are given."""
TIE = 0.01
"""Relative RMSE difference in the validation below which candidates count as equally good."""
MIN_BLOCKS = 16
"""Coarse pixels per side the scene needs for the reduced world to have coarse pixels of its own."""


@dataclass(frozen=True)
class Score:
    method: str
    rmse: float


@dataclass(frozen=True)
class Choice:
    method: str
    scores: Tuple[Score, ...]
    """Every candidate's RMSE in the reduced world, best first; empty when the scene is too small to validate."""
    reason: str

    @property
    def is_baseline(self) -> bool:
        """Whether auto fell back on delta, which adds nothing to the inputs (a warning, not a note)."""
        return self.method == "delta"


def candidates(given: Sequence[str], weights: Optional[str] = None, deep: Optional[str] = None) -> List[MethodSpec]:
    """The candidate methods whose required inputs are all given (plus a deep model when it has weights)."""
    names = list(CANDIDATES) + ([deep] if deep and weights else [])
    found = []
    for name in names:
        try:
            spec = get_method(name)
        except Exception:  # noqa: BLE001  (a candidate not built into this engine is simply not tried)
            continue
        if set(spec.required) <= set(given):
            found.append(spec)
    return found


def reduced_world(arrays: Mapping[str, np.ndarray], valid: np.ndarray, ratio: int):
    """(inputs and truth one coarse step down as (C, h, w) arrays, their valid mask, the reduced ratio) or None
    when the scene is too small to validate on: fewer than MIN_BLOCKS coarse pixels a side, or fewer than
    MIN_BLOCKS² of them wholly holding data (a coarse image over a corner of the fine reference)."""
    fine, _ = block_mean(arrays[roles.FINE_REFERENCE], valid, ratio)
    hb, wb = fine.shape[1:]
    if min(hb, wb) < MIN_BLOCKS:
        return None
    reduced = max(2, min(ratio, min(hb, wb) // 8))
    complete, _ = block_mean(valid[None].astype(np.float32), np.ones_like(valid), ratio)
    small_valid = complete[0] >= 1.0 - 1e-6
    if small_valid.sum() < MIN_BLOCKS * MIN_BLOCKS:
        return None
    world = {}
    for role, array in arrays.items():
        means, _ = block_mean(array, valid, ratio)
        world[role] = _coarser(means, small_valid, reduced) if role in roles.COARSE_ROLES else means
    truth, _ = block_mean(arrays[roles.COARSE_TARGET], valid, ratio)
    return world, truth, small_valid, reduced


def _coarser(image: np.ndarray, valid: np.ndarray, ratio: int) -> np.ndarray:
    """Block means of `image` at `ratio`, brought back onto its own grid bilinearly (as the engine aligns) between
    the blocks with data: a block without any stays out of its neighbours, like the raster's edge."""
    means, has_data = block_mean(image, valid, ratio)
    tensor = torch.from_numpy(np.ascontiguousarray(means, dtype=np.float32))
    return interpolate(tensor, torch.from_numpy(has_data), ratio, (0, 0), image.shape[1:]).numpy()


def score(arrays: Mapping[str, np.ndarray], valid: np.ndarray, ratio: int, specs: Sequence[MethodSpec],
          options: Mapping[str, Mapping[str, object]], weights: Optional[str] = None, tick=lambda f=None: None
          ) -> Choice:
    """Each candidate's RMSE in the reduced world; the winner (delta when the scene is too small to tell).
    `tick(fraction)` reports the share of the candidates done, each candidate's own ticks within its share."""
    world = reduced_world(arrays, valid, ratio)
    if world is None:
        return Choice("delta", (), f"the scene holds data in fewer than {MIN_BLOCKS}×{MIN_BLOCKS} coarse pixels, "
                                   "too few to validate methods on; auto takes the delta baseline")
    inputs, truth, small_valid, reduced = world
    fine = inputs[roles.FINE_REFERENCE]
    tensor = lambda a: torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))[None]  # noqa: E731
    batch = TileBatch(valid=torch.from_numpy(small_valid)[None, None], origins=((0, 0),),
                      **{role: tensor(array) for role, array in inputs.items()})
    std = tuple(float(s) for s in fine[:, small_valid].std(axis=1))
    scores, predictions = [], {}
    for index, spec in enumerate(specs):
        tick(index / len(specs))
        context = MethodContext(ratio=reduced, bands=fine.shape[0], given=frozenset(inputs),
                                device=torch.device("cpu"), fine_std=std, weights=weights if spec.needs_weights
                                else None, options=resolved_options(spec, options.get(spec.name)),
                                tick=tick_within(tick, index / len(specs), (index + 1) / len(specs)))
        context = spec.surveyed(context, lambda: [batch])
        with torch.inference_mode():
            predicted = spec.build(context)(batch)[0].float().numpy()
        predictions[spec.name] = predicted
        scores.append(Score(spec.name, _rmse(predicted, truth, small_valid)))
    singles = sorted(scores, key=lambda s: s.rmse)
    for count in range(2, len(singles) + 1):  # the mean of the best k
        members = [s.method for s in singles[:count]]
        mean = np.mean([predictions[name] for name in members], axis=0)
        scores.append(Score("+".join(members), _rmse(mean, truth, small_valid)))
    ranked = tuple(sorted(scores, key=lambda s: s.rmse))
    delta = next((s.rmse for s in ranked if s.method == "delta"), None)
    best = pick(ranked, delta)
    if best.method == "delta":
        reason = "no candidate beats the delta baseline on this scene's own validation; auto takes delta"
    else:
        gain = f" ({1 - best.rmse / delta:.0%} below delta)" if delta else ""
        what = f"the mean of {best.method.replace('+', ', ')}" if "+" in best.method else best.method
        tie = f"; within {TIE:.0%} of the best, the mean of more methods is preferred" \
            if best is not ranked[0] else ""
        reason = f"auto takes {what}: RMSE {best.rmse:.4g} in Wald's reduced-resolution validation{gain}{tie}"
    return Choice(best.method, ranked, reason)


def pick(ranked: Sequence[Score], delta: Optional[float]) -> Score:
    """The best score, or the mean of the most methods among those within TIE of the best RMSE (and no worse than
    delta): the validation cannot tell those apart, and a mean of methods whose errors partly cancel is the safer
    bet on the real scene."""
    limit = min(ranked[0].rmse * (1 + TIE), delta if delta is not None else float("inf"))
    tied = [s for s in ranked if s.rmse <= limit]
    return max(tied, key=lambda s: (s.method.count("+"), -s.rmse))


def _rmse(predicted: np.ndarray, truth: np.ndarray, valid: np.ndarray) -> float:
    error = (predicted - truth)[:, valid].astype(np.float64)
    return float(np.sqrt(np.mean(error**2)))

