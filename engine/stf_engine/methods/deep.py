"""The deep models as fusion methods: load the checkpoint, check it fits the run, normalise, run the network."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import torch

from ..core.device import cudnn_autotuned
from ..models import MODELS, checkpoint, instantiate
from ..models.base import ModelDef
from ..models.held_out import verdict
from ..models.normalise import Normalisation
from .contract import MethodContext, MethodSpec, TileBatch

WEIGHTS_ENV = "STF_WEIGHTS_DIR"
"""Folder searched first for shipped demo checkpoints named <model>.pt."""
_PACKAGE = Path(__file__).resolve().parents[1]
BUNDLED_WEIGHTS = (
    _PACKAGE.parents[1] / "resources" / "weights",  # a source checkout: <repo>/engine/stf_engine
    _PACKAGE.parent / "resources" / "weights",  # the plugin zip: <plugin>/stf_engine
)


def shipped_weights(name: str) -> Optional[str]:
    """The demo checkpoint for a model, if one is installed."""
    for folder in (os.environ.get(WEIGHTS_ENV), *BUNDLED_WEIGHTS):
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


def memory_layout(device) -> torch.memory_format:
    """channels_last on a GPU, where cuDNN's convolutions are fastest in it; the default layout elsewhere."""
    return torch.channels_last if getattr(device, "type", None) == "cuda" else torch.contiguous_format


def _build(model: ModelDef):
    def build(context: MethodContext):
        path = context.weights
        loaded = checkpoint.load(path)
        given = frozenset(context.given) & frozenset(model.required + model.optional)
        checkpoint.check_fits(loaded.meta, model.name, context.bands, given, path)
        if int(loaded.meta["ratio"]) != context.ratio:
            context.warn(
                f"{path} was trained at a coarse/fine ratio of {loaded.meta['ratio']} but these inputs have "
                f"{context.ratio}; results may suffer (set the real coarse pixel size or train on these rasters)"
            )
        mode = (loaded.meta.get("training") or {}).get("mode", "self")
        trained = verdict(model.name, loaded.meta.get("validation") or {}, mode)
        if trained.warning:
            context.warn(f"{path}: when it was trained, {trained.warning}")
        layout = memory_layout(context.device)
        network = instantiate(model, loaded.meta, loaded.state).to(context.device, memory_format=layout).eval()
        for module in network.modules():  # a forward pass can take seconds: honour a cancel between layers
            module.register_forward_pre_hook(lambda module, inputs: context.tick())
        normalisation = Normalisation.from_meta(loaded.meta["normalisation"])

        def run(batch: TileBatch):
            # nodata becomes the training mean (0 once normalised) so it cannot skew pooled statistics
            inputs = {
                role: normalisation.apply(role, getattr(batch, role)).masked_fill(~batch.valid, 0.0)
                .contiguous(memory_format=layout) for role in given
            }
            with cudnn_autotuned(batch.valid.device):
                return normalisation.restore(network(inputs))

        return run

    return build


def method_spec(model: ModelDef) -> MethodSpec:
    """A deep model as a fusion method; it takes no options at fusion time (they are in its checkpoint)."""
    return MethodSpec(
        name=model.name,
        description=model.description,
        required=model.required,
        optional=model.optional,
        halo=_halo(model),
        build=_build(model),
        coarse_resampling=model.coarse_resampling,
        needs_weights=True,
        default_weights=shipped_weights(model.name),
        blend=model.blend,
    )


SPECS = tuple(method_spec(model) for model in MODELS.values())
