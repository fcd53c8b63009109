"""Deep fusion models (MARSTFN, GAN-STFM, EDCSTFN): networks, objectives, checkpoints."""
from __future__ import annotations

from typing import Dict, Mapping

import torch.nn as nn

from ..core.options import defaults
from ..errors import StfError
from . import edcstfn, ganstfm, marstfn
from .base import ModelDef

MODELS: Dict[str, ModelDef] = {m.MODEL.name: m.MODEL for m in (marstfn, ganstfm, edcstfn)}


def get_model(name: str) -> ModelDef:
    if name not in MODELS:
        raise StfError(f"'{name}' is not a trainable model; choose one of: {', '.join(MODELS)}")
    return MODELS[name]


def instantiate(model: ModelDef, meta: Mapping[str, object], state=None) -> nn.Module:
    """The network a checkpoint describes, with its weights when given."""
    options = {**defaults(model.options), **meta.get("options", {})}
    network = model.network(int(meta["bands"]), frozenset(meta["roles"]), int(meta["ratio"]), options)
    if state is not None:
        try:
            network.load_state_dict(state)
        except RuntimeError:
            raise StfError(
                f"the checkpoint's weights do not match {model.name} version {model.version} "
                f"(it says version {meta.get('model_version')}); retrain it with this STF"
            ) from None
    return network
