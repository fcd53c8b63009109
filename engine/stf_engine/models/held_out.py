"""What a trained model's held-out scores (a checkpoint's `validation`) say about it against the delta baseline:
the training summary and every later fusion with the checkpoint give the same verdict."""
from __future__ import annotations

from typing import Mapping, NamedTuple, Optional

SCORES = ("rmse", "rmse_delta", "rmse_coarse_input", "delta_smoothing")
"""What a verdict needs; older checkpoints scored delta unsmoothed (or not at all) and get none."""
UNITS_GAP = 10.0
"""How many times the coarse image's held-out RMSE delta's must exceed to point at units, not the scene: delta adds
the fine reference to the coarse images, so a fine image read at another scale than the coarse ones ruins it while
the coarse image alone (the truth's own sensor, in self mode) stays close."""
MARGIN = 0.05
"""How much lower than delta's a held-out RMSE must be to show that the model beats delta: gains on held-out
patches shrink on the real scene (on the bench, 10% became 2%, 6% became 0%, and 1.5% a loss of 31%)."""


class Verdict(NamedTuple):
    kind: str
    """'beats', 'does not beat', 'cannot show', 'too close', or '' when the scores do not allow a verdict."""
    sentence: str
    warning: Optional[str]
    """What to warn the user of; None when the held-out data show that the model beats delta."""


def verdict(model: str, metrics: Mapping[str, float], mode: str = "self") -> Verdict:
    """The model against delta on held-out data. Only in self mode, whose truth is the coarse image one ratio
    down, does a coarse image scoring as well as delta mean the data cannot show fine detail; a NaN score never
    counts as beating anything."""
    if not all(key in metrics for key in SCORES):
        return Verdict("", "", None)
    score, delta, coarse = metrics["rmse"], metrics["rmse_delta"], metrics["rmse_coarse_input"]
    scores = f"held-out RMSE {score:.4g} against delta's {delta:.4g}"
    if not score < delta:
        return Verdict("does not beat", f"{scores}: the model does NOT beat delta; use delta or auto for this scene",
                       f"the trained {model} does not beat the delta baseline on held-out data (RMSE {score:.4g} "
                       f"against {delta:.4g}): fuse this scene with delta or auto instead")
    if mode == "self" and not coarse > delta:
        return Verdict(
            "cannot show",
            f"{scores}, but the coarse image alone scores {coarse:.4g}: this scene cannot show that the model beats "
            f"delta",
            _units_warning(coarse, delta) if delta > UNITS_GAP * coarse else
            f"on held-out data the coarse image alone (RMSE {coarse:.4g}) scores as well as the delta baseline "
            f"({delta:.4g}): at reduced resolution this scene shows no fine detail (too few coarse pixels, or a "
            f"coarse sensor blurrier than its pixel size), so it cannot show that the trained {model} beats delta, "
            f"and it most likely does not: fuse this scene with delta or auto, or train on a larger area or a time "
            f"series")
    if score > delta * (1 - MARGIN):
        return Verdict(
            "too close",
            f"{scores}: within {MARGIN:.0%} of delta, too close to show that the model beats it",
            f"the trained {model} scores within {MARGIN:.0%} of the delta baseline on held-out data (RMSE {score:.4g} "
            f"against {delta:.4g}), too close to show that it beats delta on the real scene, where held-out gains "
            f"shrink: fuse this scene with delta or auto, or compare the two on a date whose fine image you have")
    return Verdict("beats", f"{scores}: the model beats delta by {1 - score / delta:.0%}", None)


def _units_warning(coarse: float, delta: float) -> str:
    """The warning when delta's held-out RMSE is many times the coarse image's alone: a unit error, not a scene
    without fine detail."""
    return (f"on held-out data the delta baseline (RMSE {delta:.4g}) scores {delta / coarse:.0f} times worse than the "
            f"coarse image alone ({coarse:.4g}): the fine and coarse inputs are most likely in different units; check "
            f"their scales (--scale) and train again")
