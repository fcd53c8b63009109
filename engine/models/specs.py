"""Registers each deep model as a fusion method: load the checkpoint, check it fits, normalise, run."""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Optional

from ..registry import MethodContext, MethodSpec, TileBatch, register
from . import MODELS, checkpoint, instantiate
from .base import ModelDef
from .normalise import Normalisation

log = logging.getLogger("stf_engine")

WEIGHTS_ENV = "STF_WEIGHTS_DIR"
"""Folder searched first for shipped demo checkpoints named <model>.pt."""
BUNDLED_WEIGHTS = Path(__file__).resolve().parents[2] / "resources" / "weights"


def shipped_weights(name: str) -> Optional[str]:
    """The demo checkpoint for a model, if one is installed."""
    for folder in (os.environ.get(WEIGHTS_ENV), BUNDLED_WEIGHTS):
        if folder and (Path(folder) / f"{name}.pt").is_file():
            return str(Path(folder) / f"{name}.pt")
    return None


def _halo(model: ModelDef):
    def halo(context: MethodContext) -> int:
        path = context.weights or shipped_weights(model.name)
        if path:
            return int(checkpoint.load(path).meta["halo"])
        return model.radius(context.ratio, model.roles_for(context.given))

    return halo


def _build(model: ModelDef):
    def build(context: MethodContext):
        path = context.weights
        loaded = checkpoint.load(path)
        given = frozenset(context.given) & frozenset(model.required + model.optional)
        checkpoint.check_fits(loaded.meta, model.name, context.bands, given, path)
        if int(loaded.meta["ratio"]) != context.ratio:
            log.warning(
                "%s was trained at a coarse/fine ratio of %s but these inputs have %s; results may suffer "
                "(set --coarse-res or train on these rasters)",
                path,
                loaded.meta["ratio"],
                context.ratio,
            )
        network = instantiate(model, loaded.meta, loaded.state).to(context.device).eval()
        normalisation = Normalisation.from_meta(loaded.meta["normalisation"])

        def run(batch: TileBatch):
            # nodata becomes the training mean (0 once normalised) so it cannot skew pooled statistics
            inputs = {
                role: normalisation.apply(role, getattr(batch, role)).masked_fill(~batch.valid, 0.0) for role in given
            }
            return normalisation.restore(network(inputs))

        return run

    return build


for _model in MODELS.values():
    register(
        MethodSpec(
            name=_model.name,
            description=_model.description,
            required=_model.required,
            optional=_model.optional,
            halo=_halo(_model),
            build=_build(_model),
            coarse_resampling=_model.coarse_resampling,
            needs_weights=True,
            default_weights=shipped_weights(_model.name),
            blend=_model.blend,
        )
    )
