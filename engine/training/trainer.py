"""`train`: fit a deep model on the user's rasters and write a self-describing checkpoint."""
from __future__ import annotations

import copy
import json
import math
import time
from dataclasses import dataclass
from typing import Callable, Dict, FrozenSet, List, Optional, Tuple

import numpy as np
import torch

from .. import roles
from ..device import autocast, resolve_device
from ..errors import FusionCancelled, StfError
from ..models import checkpoint, get_model, instantiate
from ..models.base import ModelDef
from ..models.normalise import Normalisation
from ..registry import get_method
from .patches import Batch, PatchSampler
from .request import MODES, TrainingRequest, TrainingResult
from .scenes import Scene, read_aligned, split_rows
from .series import series_scenes
from .wald import reduced_scene

Progress = Callable[[float, str], None]
VALIDATION_PATCHES = 16
MAX_STEPS = 500


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


def load_data(request: TrainingRequest, model: ModelDef) -> TrainingData:
    """Training and validation scenes for the request's mode."""
    spec = get_method(model.name)
    if request.mode == "self":
        if not (request.coarse_target and request.fine_reference):
            raise StfError("self-training needs a coarse target and a fine reference")
        given = {r: getattr(request, r) for r in roles.ALL_ROLES if getattr(request, r)}
        given = {r: p for r, p in given.items() if r in model.roles_for(given)}
        missing = set(model.required) - set(given)
        if missing:
            raise StfError(f"{model.name} needs a {', '.join(roles.LABELS[r] for r in sorted(missing))}")
        aligned = read_aligned(given, request, spec)
        scene = reduced_scene(aligned, aligned.ratio, model.coarse_resampling, "reduced resolution")
        train, validation = split_rows([scene], request.validation_fraction)
        used = frozenset(scene.inputs)
        sources = {r: str(p) for r, p in given.items()}
    else:
        if not request.series:
            raise StfError("series training needs --series (a CSV or a folder of dated rasters)")
        by_date, used, aligned = series_scenes(request, model, spec)
        if request.validation_date:
            validation = by_date.pop(request.validation_date)
            train = [scene for scenes in by_date.values() for scene in scenes]
            if not train:
                raise StfError("no training dates left after holding out the validation date")
        else:
            scenes = [scene for listed in by_date.values() for scene in listed]
            train, validation = split_rows(scenes, request.validation_fraction)
        sources = {"series": str(request.series)}
    summary = {
        "mode": request.mode,
        "sources": sources,
        "scenes": [scene.label for scene in train],
        "validation": [scene.label for scene in validation],
        "train_pixels": int(sum(scene.valid.sum() for scene in train)),
        "ratio": aligned.ratio,
    }
    bands = aligned.arrays[roles.FINE_REFERENCE].shape[0]
    return TrainingData(train, validation, used, bands, aligned.ratio, aligned.band_names, summary, aligned.warnings)


def _tensors(batch: Batch, normalisation: Normalisation, device) -> Tuple[Dict[str, torch.Tensor], torch.Tensor]:
    inputs, target = batch
    moved = {role: normalisation.apply(role, torch.from_numpy(a).to(device)) for role, a in inputs.items()}
    return moved, normalisation.apply(roles.FINE_REFERENCE, torch.from_numpy(target).to(device))


def _evaluate(network, batch: Batch, normalisation: Normalisation, device, size: int) -> Dict[str, float]:
    """RMSE and MAE (reflectance) of the network and of the coarse target on the fixed validation patches."""
    network.eval()
    inputs, target = batch
    errors, coarse_errors = [], []
    with torch.no_grad():
        for start in range(0, len(target), size):
            part = ({r: a[start : start + size] for r, a in inputs.items()}, target[start : start + size])
            moved, _ = _tensors(part, normalisation, device)
            predicted = normalisation.restore(network(moved).float()).cpu().numpy()
            errors.append(predicted - part[1])
            coarse_errors.append(part[0][roles.COARSE_TARGET] - part[1])
    error, coarse = np.concatenate(errors), np.concatenate(coarse_errors)
    network.train()
    return {
        "rmse": float(np.sqrt(np.mean(error.astype(np.float64) ** 2))),
        "mae": float(np.mean(np.abs(error))),
        "rmse_coarse_input": float(np.sqrt(np.mean(coarse.astype(np.float64) ** 2))),
    }


def _check(request: TrainingRequest, model: ModelDef) -> None:
    if request.mode not in MODES:
        raise StfError(f"unknown training mode '{request.mode}'; use self or series")
    if request.epochs < 1 or request.batch < 1 or request.patch < 8 or request.lr <= 0:
        raise StfError("epochs and batch must be ≥ 1, patch ≥ 8 and the learning rate > 0")
    if not 0 < request.validation_fraction < 1:
        raise StfError("the validation fraction must lie between 0 and 1")
    unknown = set(request.options) - set(model.options)
    if unknown:
        raise StfError(f"unknown option(s) {sorted(unknown)} for {model.name}; it takes {sorted(model.options)}")


def _options(model: ModelDef, request: TrainingRequest, resumed) -> Dict[str, object]:
    options = {**model.options, **(resumed.meta["options"] if resumed else {}), **request.options}
    return {k: type(model.options[k])(v) for k, v in options.items()}


def train(request: TrainingRequest, progress: Optional[Progress] = None, cancel=None) -> TrainingResult:
    """Train `request.model`; `progress(fraction, message)` per step, `cancel.is_set()` checked per step."""
    started = time.perf_counter()
    model = get_model(request.model)
    _check(request, model)
    device = resolve_device(request.device)
    report = progress or (lambda fraction, message: None)
    report(0.0, "reading training data")
    data = load_data(request, model)
    resumed = checkpoint.load(request.resume) if request.resume else None
    if resumed:
        checkpoint.check_fits(resumed.meta, model.name, data.bands, data.roles, request.resume)

    rng = np.random.default_rng(request.seed)
    torch.manual_seed(request.seed)
    sampler = PatchSampler(data.train, request.patch, rng)
    validation = PatchSampler(data.validation, request.patch, np.random.default_rng(request.seed + 1))
    validation_batch = validation.draw(VALIDATION_PATCHES, augment=False)
    if resumed:
        normalisation = Normalisation.from_meta(resumed.meta["normalisation"])
    else:
        fine = [s.target[:, s.valid] for s in data.train]
        pan = [s.inputs[roles.PAN][:, s.valid] for s in data.train if roles.PAN in s.inputs]
        normalisation = Normalisation.fit(fine, pan)

    options = _options(model, request, resumed)
    meta = {
        "model": model.name,
        "model_version": model.version,
        "bands": data.bands,
        "band_names": [name or "" for name in data.band_names],
        "roles": sorted(data.roles),
        "ratio": data.ratio,
        "scales": dict(request.scales),
        "normalisation": normalisation.to_meta(),
        "options": options,
        "halo": model.radius(data.ratio, data.roles),
        "engine_version": _engine_version(),
    }
    training_state = resumed.training if resumed else None
    start = training_state["network"] if training_state else (resumed.state if resumed else None)
    network = instantiate(model, meta, start)
    network = network.to(device).train()
    objective = model.objective(data.bands, options).to(device)
    optimizer = torch.optim.Adam(network.parameters(), lr=request.lr)
    auxiliary = [p for p in objective.parameters() if p.requires_grad]
    aux_optimizer = torch.optim.Adam(auxiliary, lr=request.lr, betas=(0.5, 0.999)) if auxiliary else None
    draw = lambda: _tensors(sampler.draw(request.batch), normalisation, device)  # noqa: E731

    history = {"train": [], "validation": [], "metrics": [], "best_epoch": 0, "bad_epochs": 0, "epoch": 0}
    best_state = copy.deepcopy(network.state_dict())
    if training_state:
        optimizer.load_state_dict(training_state["optimizer"])
        objective.load_state_dict(training_state["objective"])
        if aux_optimizer:
            aux_optimizer.load_state_dict(training_state["aux_optimizer"])
        history = json.loads(training_state["history"])
        rng.bit_generator.state = json.loads(training_state["rng"])
        torch.set_rng_state(training_state["torch_rng"])
        best_state = resumed.state
    else:
        report(0.0, "preparing the loss")
        objective.prepare(draw, None, request.lr)

    steps = request.steps_per_epoch or int(
        min(MAX_STEPS, max(1, math.ceil(data.summary["train_pixels"] / (sampler.patch**2 * request.batch))))
    )
    scaler = torch.amp.GradScaler("cuda", enabled=device.type == "cuda")
    precision = "fp16" if device.type == "cuda" else "fp32"
    first_epoch = history["epoch"]
    total = max(1, (request.epochs - first_epoch) * steps)
    stopped_early = False
    for epoch in range(first_epoch, request.epochs):
        losses = []
        last = history["metrics"][-1]["rmse"] if history["metrics"] else float("nan")
        for step in range(steps):
            if cancel is not None and cancel.is_set():
                raise FusionCancelled("training cancelled; the last finished epoch is in the checkpoint")
            inputs, target = draw()
            with autocast(device, precision):
                predicted = network(inputs)
                loss = objective.loss(predicted.float(), target, inputs)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            if aux_optimizer:
                with autocast(device, precision):
                    aux_loss = objective.auxiliary_loss(predicted.detach().float(), target, inputs)
                aux_optimizer.zero_grad(set_to_none=True)
                scaler.scale(aux_loss).backward()
                scaler.step(aux_optimizer)
            scaler.update()
            losses.append(float(loss.detach()))
            done = (epoch - first_epoch) * steps + step + 1
            report(done / total, f"epoch {epoch + 1}/{request.epochs} loss {np.mean(losses):.4f} val rmse {last:.4f}")

        metrics = _evaluate(network, validation_batch, normalisation, device, request.batch)
        history["train"].append(float(np.mean(losses)))
        history["validation"].append(metrics["rmse"])
        history["metrics"].append(metrics)
        history["epoch"] = epoch + 1
        if metrics["rmse"] < min(history["validation"][:-1], default=math.inf):
            best_state, history["best_epoch"], history["bad_epochs"] = copy.deepcopy(network.state_dict()), epoch + 1, 0
        else:
            history["bad_epochs"] += 1
        stopped_early = history["bad_epochs"] >= request.patience
        final = epoch + 1 == request.epochs or stopped_early
        _save(request, meta, data, steps, sampler.patch, history, best_state, final, {
            "network": network.state_dict(),
            "optimizer": optimizer.state_dict(),
            "aux_optimizer": aux_optimizer.state_dict() if aux_optimizer else {},
            "objective": objective.state_dict(),
            "history": json.dumps(history),
            "rng": json.dumps(rng.bit_generator.state),
            "torch_rng": torch.get_rng_state(),
        })
        summary = f"epoch {epoch + 1}: loss {history['train'][-1]:.4f} val rmse {metrics['rmse']:.4f}"
        report(history["epoch"] / request.epochs, summary)
        if stopped_early:
            break

    best = history["metrics"][history["best_epoch"] - 1] if history["metrics"] else {}
    return TrainingResult(
        checkpoint=request.output,
        model=model.name,
        epochs=history["epoch"],
        best_epoch=history["best_epoch"],
        steps=steps,
        train_losses=history["train"],
        validation_losses=history["validation"],
        validation_metrics=best,
        seconds=time.perf_counter() - started,
        device=str(device),
        samples={"train_scenes": len(data.train), "train_pixels": data.summary["train_pixels"], "patch": sampler.patch},
        stopped_early=stopped_early,
        warnings=tuple(data.warnings),
    )


def _engine_version() -> str:
    from .. import __version__  # the package defines it after importing this module

    return __version__


def _save(request, meta, data, steps, patch, history, best_state, final, training) -> None:
    """Best weights with metadata, plus the state needed to resume (left out of final slim checkpoints)."""
    described = dict(meta)
    described["training"] = {
        **data.summary,
        "patch": patch,
        "batch": request.batch,
        "epochs": history["epoch"],
        "steps_per_epoch": steps,
        "lr": request.lr,
        "seed": request.seed,
        "train_losses": history["train"],
        "validation_rmse": history["validation"],
        "best_epoch": history["best_epoch"],
    }
    described["validation"] = history["metrics"][history["best_epoch"] - 1] if history["best_epoch"] else {}
    keep = request.keep_training_state or not final
    checkpoint.save(request.output, checkpoint.Checkpoint(described, best_state, training if keep else None))
