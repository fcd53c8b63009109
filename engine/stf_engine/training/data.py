"""Training data for a request's mode: scenes read whole, split into training and validation, as tensors."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, FrozenSet, List, Optional, Tuple

import torch

from .. import roles
from ..core.progress import Warnings
from ..errors import StfError
from ..inputs.aligned import scene_shape
from ..models.base import ModelDef
from ..models.normalise import Normalisation
from .patches import Batch
from .request import TrainingRequest
from .scenes import Scene, read_aligned, split_rows
from .series import series_scenes, validation_day
from .wald import reduced_scene, wald_factor


@dataclass
class TrainingData:
    train: List[Scene]
    validation: List[Scene]
    roles: FrozenSet[str]
    bands: int
    ratio: int
    band_names: Tuple[Optional[str], ...]
    summary: Dict[str, object]
    warnings: List[str]
    step_ratio: int = 1
    """The coarse/fine ratio inside the training scenes (the Wald factor in self mode, the real ratio in series)."""
    held_out: str = "the held-out part (the bottom rows)"
    """What `validation` is, as a refusal names it: the bottom rows, or the held-out date."""


def self_training_roles(request: TrainingRequest, model: ModelDef) -> Dict[str, str]:
    """The request's layers the model uses in self mode, by role; StfError naming a role the model needs."""
    if not (request.coarse_target and request.fine_reference):
        raise StfError("self-training needs a coarse target and a fine reference")
    given = {r: getattr(request, r) for r in roles.ALL_ROLES if getattr(request, r, None)}
    given = {r: p for r, p in given.items() if r in model.roles_for(given)}
    missing = set(model.required) - set(given)
    if missing:
        raise StfError(f"{model.name} needs a {', '.join(roles.asked_for(r) for r in sorted(missing))}")
    return given


def check_self_training(request: TrainingRequest, model: ModelDef) -> None:
    """What self-training would refuse in its scene, from the layers' metadata (no pixel is read)."""
    wald_factor(*scene_shape(self_training_roles(request, model), request.coarse_resolution))


def load_data(request: TrainingRequest, model: ModelDef, warnings: Warnings) -> TrainingData:
    """Training and validation scenes for the request's mode; what reading them warns of is added to `warnings`
    (which becomes the data's: a warning given before, by the series listing of the request's check, is not
    repeated)."""
    held_out = TrainingData.held_out
    if request.mode == "self":
        given = self_training_roles(request, model)
        aligned = read_aligned(given, request, model.coarse_resampling)
        factor = wald_factor(*aligned.valid.shape, aligned.ratio)
        scene = reduced_scene(aligned, factor, model.coarse_resampling, "reduced resolution")
        if factor < aligned.ratio:
            aligned.warnings.append(
                f"the scene is small for its coarse/fine ratio of {aligned.ratio}: self-training degrades it by "
                f"{factor} only, so the model learns a smaller step than it will take"
            )
        if request.series:
            aligned.warnings.append(f"self-training learns from the layers given; the series {request.series} is "
                                    f"ignored (train in series mode to use it)")
        if request.mask_rules:
            rules = ", ".join(f"{role}={rule}" for role, rule in request.mask_rules.items())
            aligned.warnings.append(f"self-training reads no mask rasters; the mask rules ({rules}) are ignored "
                                    f"(they decode a series' coarse_mask and fine_mask in series mode)")
        warnings.extend_unique(aligned.warnings)
        train, validation = split_rows([scene], request.validation_fraction)
        used = frozenset(scene.inputs)
        sources = {r: str(p) for r, p in given.items()}
        summary_factor = {"wald_factor": factor}
    else:
        if not request.series:
            raise StfError("series training needs --series (a CSV or a folder of dated rasters)")
        by_date, used, aligned = series_scenes(request, model, warnings)
        if request.validation_date:
            validation = by_date.pop(validation_day(request))
            held_out = f"the held-out date {request.validation_date}"
            train = [scene for scenes in by_date.values() for scene in scenes]
            if not train:
                raise StfError("no training dates left after holding out the validation date")
        else:
            scenes = [scene for listed in by_date.values() for scene in listed]
            train, validation = split_rows(scenes, request.validation_fraction)
        sources = {"series": str(request.series)}
        summary_factor, factor = {}, aligned.ratio
    summary = {
        "mode": request.mode,
        "sources": sources,
        "scenes": [scene.label for scene in train],
        "validation": [scene.label for scene in validation],
        "train_pixels": int(sum(scene.valid.sum() for scene in train)),
        "ratio": aligned.ratio,
        **summary_factor,
    }
    bands = aligned.arrays[roles.FINE_REFERENCE].shape[0]
    step = factor if request.mode == "self" else aligned.ratio
    return TrainingData(train, validation, used, bands, aligned.ratio, aligned.band_names, summary, warnings, step,
                        held_out)


def to_tensors(batch: Batch, normalisation: Normalisation, device):
    """(normalised inputs with nodata at the training mean (0), as fusing sees them; normalised target; mask)."""
    inputs, target, valid = batch
    mask = torch.from_numpy(valid).to(device)
    moved = {role: normalisation.apply(role, torch.from_numpy(a).to(device)).masked_fill(~mask, 0.0)
             for role, a in inputs.items()}
    return moved, normalisation.apply(roles.FINE_REFERENCE, torch.from_numpy(target).to(device)), mask
