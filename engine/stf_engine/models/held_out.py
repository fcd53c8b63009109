"""What a trained model's held-out scores (a checkpoint's `validation`) say about it against the delta baseline:
the training summary and every later fusion with the checkpoint give the same verdict."""
from __future__ import annotations

from typing import Mapping, Optional, Tuple

SCORES = ("rmse", "rmse_delta", "rmse_coarse_input")


def verdict(model: str, metrics: Mapping[str, float]) -> Tuple[str, Optional[str]]:
    """A sentence comparing the model with delta on held-out data, and the warning to give when the data do not
    show that it beats delta (None when they do); ("", None) for scores without delta's (older checkpoints)."""
    if not all(key in metrics for key in SCORES):
        return "", None
    score, delta, coarse = metrics["rmse"], metrics["rmse_delta"], metrics["rmse_coarse_input"]
    scores = f"held-out RMSE {score:.4g} against delta's {delta:.4g}"
    if score >= delta:
        return (f"{scores}: the model does NOT beat delta; use delta or auto for this scene",
                f"the trained {model} does not beat the delta baseline on held-out data (RMSE {score:.4g} against "
                f"{delta:.4g}): fuse this scene with delta or auto instead")
    if coarse <= delta:
        return (f"{scores}, but the coarse image alone scores {coarse:.4g}: this scene cannot show that the model "
                f"beats delta",
                f"on held-out data the coarse image alone (RMSE {coarse:.4g}) scores as well as the delta baseline "
                f"({delta:.4g}): at reduced resolution this scene shows no fine detail (too few coarse pixels, or a "
                f"coarse sensor blurrier than its pixel size), so it cannot show that the trained {model} beats "
                f"delta, and it most likely does not: fuse this scene with delta or auto, or train on a larger area "
                f"or a time series")
    return f"{scores}: the model beats delta by {1 - score / delta:.0%}", None
