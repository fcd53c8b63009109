"""Checkpoints of freshly initialised networks, described as training would describe them (tests and benches)."""
import torch

from stf_engine.core.options import defaults
from stf_engine.models import MODELS, checkpoint
from stf_engine.models.normalise import Normalisation


def save_random(path, name, bands=3, given=(), ratio=4, seed=0, prepare=None) -> str:
    """A checkpoint of a freshly initialised network (passed to `prepare` first, if given), as training would
    describe it."""
    torch.manual_seed(seed)
    model = MODELS[name]
    used = model.roles_for(given)
    meta = {
        "model": name, "model_version": model.version, "bands": bands, "roles": sorted(used), "ratio": ratio,
        "options": defaults(model.options), "halo": model.radius(ratio, used),
        "normalisation": Normalisation((0.2,) * bands, (0.05,) * bands, 0.3, 0.1).to_meta(),
    }
    network = model.network(bands, used, ratio, defaults(model.options))
    if prepare:
        prepare(network)
    checkpoint.save(str(path), checkpoint.Checkpoint(meta, network.state_dict()))
    return str(path)
