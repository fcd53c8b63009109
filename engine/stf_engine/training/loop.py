"""`train`: fit a deep model on the user's rasters and write a self-describing checkpoint, in phases.

check the request → load the data → set up the network (fresh or resumed) → epochs of steps, each epoch
validated and checkpointed → the result.
"""
from __future__ import annotations

import copy
import json
import math
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable, Dict, Iterator, Optional, Tuple

import numpy as np
import torch

from .. import roles
from ..core.device import autocast, cpu_threads, resolve_device
from ..core.options import defaults, parse
from ..core.outputs import check_writable_file, made_folder, output_lock, refuse_overwrite
from ..core.progress import Cancel, Progress, Warnings, check_cancel, reporter
from ..errors import FusionCancelled, StfError
from ..inputs.series_list import list_series, series_files
from ..models import checkpoint, get_model, instantiate
from ..models.base import ModelDef
from ..models.held_out import verdict
from ..models.normalise import Normalisation
from ..version import __version__
from .baseline import FIT_PATCH, FIT_PATCHES, fit_smoothing, held_out_baselines, rmse
from .data import TrainingData, check_self_training, load_data, to_tensors
from .patches import Batch, PatchSampler
from .request import MIN_PATCH, MODES, TrainingRequest, TrainingResult

VALIDATION_PATCHES = 16
MAX_STEPS = 500
MIN_STEPS = 25
"""Steps per epoch at least: a small scene is drawn from many times (random crops, flips and turns)."""
NOTHING_WRITTEN = "training cancelled before this run finished an epoch; it wrote no checkpoint"


@dataclass
class Session:
    """What the epochs update: the network, its objective and optimisers, and the history to resume from."""

    network: torch.nn.Module
    objective: torch.nn.Module
    optimizer: torch.optim.Optimizer
    aux_optimizer: Optional[torch.optim.Optimizer]
    draw: Callable[[], Tuple[Dict[str, torch.Tensor], torch.Tensor]]
    best_state: Dict[str, torch.Tensor]
    history: Dict[str, object] = field(
        default_factory=lambda: {"train": [], "validation": [], "metrics": [], "best_epoch": 0, "bad_epochs": 0,
                                 "epoch": 0}
    )
    kept: str = ""
    """What the checkpoint holds once this run has saved one (see `_kept`); empty before."""


def check_training(request: TrainingRequest) -> None:
    """Raise StfError naming the first problem `train` would meet before it reads a pixel: the request, and in self
    mode the layers' coarse/fine ratio and size (for forms such as the dialog's "train on these layers first")."""
    model = get_model(request.model)
    _check(request, model)
    if request.mode == "self":
        check_self_training(request, model)


def train(request: TrainingRequest, progress: Optional[Progress] = None,
          cancel: Optional[Cancel] = None) -> TrainingResult:
    """Train `request.model`; `progress(fraction, message)` per step, `cancel.is_set()` checked per step."""
    started = time.perf_counter()
    report = reporter(progress, cancel)
    model = get_model(request.model)
    warnings = Warnings()
    options = _check(request, model, warnings)
    device = resolve_device(request.device)
    folder = os.path.dirname(os.path.abspath(request.output))
    with made_folder(folder), output_lock(request.output), cpu_threads(request.threads):  # a stop removes new folders
        return _train(request, model, options, device, report, cancel, started, warnings)


def _train(request, model, options, device, report: Progress, cancel, started: float,
           warnings: Warnings) -> TrainingResult:
    report(0.0, "reading training data")
    data = load_data(request, model, warnings)
    check_cancel(cancel, NOTHING_WRITTEN)
    resumed = checkpoint.load(request.resume) if request.resume else None
    if resumed:
        checkpoint.check_fits(resumed.meta, model.name, data.bands, data.roles, request.resume)

    rng = np.random.default_rng(request.seed)
    torch.manual_seed(request.seed)
    sampler = PatchSampler(data.train, _patch_size(request.patch, data.train), rng)
    validation = PatchSampler(data.validation, request.patch, np.random.default_rng(request.seed + 1), data.held_out)
    validation_batch = validation.draw(VALIDATION_PATCHES, augment=False)
    # Its own generator: the training's draws stay as they were.
    fitting = PatchSampler(data.train, min(sampler.patch, FIT_PATCH), np.random.default_rng(request.seed + 2))
    smoothing = fit_smoothing(fitting.draw(FIT_PATCHES, augment=False), data.step_ratio)
    baselines = held_out_baselines(validation_batch, data.step_ratio, smoothing)
    check_cancel(cancel, NOTHING_WRITTEN)
    if resumed:
        normalisation = Normalisation.from_meta(resumed.meta["normalisation"])
    else:
        fine = [s.target[:, s.valid] for s in data.train]
        pan = [s.inputs[roles.PAN][:, s.valid] for s in data.train if roles.PAN in s.inputs]
        normalisation = Normalisation.fit(fine, pan)
    resumed_options = resumed.meta["options"] if resumed else {}
    meta = _meta(model, data, request, normalisation, {**defaults(model.options), **resumed_options, **options})
    draw = lambda: to_tensors(sampler.draw(request.batch), normalisation, device)  # noqa: E731
    deadline = started + request.minutes * 60 if request.minutes else math.inf
    session = _start(model, meta, request, resumed, device, draw, rng, _preparation(report, cancel, deadline))

    steps = request.steps_per_epoch or int(
        min(MAX_STEPS, max(MIN_STEPS, math.ceil(data.summary["train_pixels"] / (sampler.patch**2 * request.batch))))
    )
    with _kept_when_stopped(session):
        stopped_early = _epochs(session, request, meta, data, steps, sampler.patch, (validation_batch, baselines),
                                normalisation, device, rng, report, cancel, deadline)
        history = session.history
        best = _best_metrics(history)
        warnings = data.warnings
        judged = verdict(model.name, best, request.mode)
        if judged.warning:
            warnings.add(judged.warning)
        report(1.0, "done")
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
            samples={"train_scenes": len(data.train), "train_pixels": data.summary["train_pixels"],
                     "patch": sampler.patch},
            stopped_early=stopped_early,
            warnings=tuple(warnings),
            verdict=judged.sentence,
        )


def _patch_size(wanted: int, scenes) -> int:
    """The requested patch, at most half the smallest training scene's side (so patches differ), at least 8."""
    side = min(min(scene.shape) for scene in scenes)
    return max(min(MIN_PATCH, side), min(wanted, side // 2))


def _check(request: TrainingRequest, model: ModelDef, warnings: Optional[Warnings] = None) -> Dict[str, object]:
    """Refuse a malformed request; return its model options typed and range-checked. What the series listing skips
    goes to `warnings` (given the run's, reading the series again later does not say it twice)."""
    if request.mode not in MODES:
        raise StfError(f"unknown training mode '{request.mode}'; use self or series")
    if not request.output:
        raise StfError("no checkpoint path given; name the .pt file to write")
    if not request.output.lower().endswith(".pt"):
        raise StfError(f"the checkpoint is a PyTorch file: give it a name ending in .pt, not {request.output}")
    check_writable_file(request.output, "checkpoint")
    inputs = {roles.LABELS[role]: getattr(request, role, None) for role in roles.ALL_ROLES}
    if request.mode == "series" and request.series:
        inputs.update(series_files(list_series(request.series, warnings=warnings)))
    refuse_overwrite({"checkpoint": request.output}, {**inputs, "series": request.series})
    return parse(model.options, request.options, f"model '{model.name}'")


def _meta(model: ModelDef, data: TrainingData, request: TrainingRequest, normalisation, options) -> Dict:
    """The checkpoint's description of the model, its inputs and how to normalise them."""
    return {
        "model": model.name,
        "model_version": model.version,
        "bands": data.bands,
        "band_names": [name or "" for name in data.band_names],
        "roles": sorted(data.roles),
        "ratio": data.ratio,
        "scales": dict(request.scales),
        "mask_rules": dict(request.mask_rules),
        "normalisation": normalisation.to_meta(),
        "options": options,
        "halo": model.radius(data.ratio, data.roles),
        "engine_version": __version__,
    }


def _preparation(report: Progress, cancel, deadline: float) -> Callable[[float], bool]:
    """The tick a loss's preparation calls before each step: honours a cancel, reports, and says whether the time
    budget is spent."""

    def tick(fraction: float) -> bool:
        check_cancel(cancel, NOTHING_WRITTEN)
        report(0.0, f"preparing the loss ({fraction:.0%})")
        return time.perf_counter() > deadline

    return tick


def _start(model: ModelDef, meta, request: TrainingRequest, resumed, device, draw, rng,
           tick: Callable[[float], bool]) -> Session:
    """The network and optimisers, fresh (with the objective prepared) or restored from a checkpoint."""
    training_state = resumed.training if resumed else None
    start = training_state["network"] if training_state else (resumed.state if resumed else None)
    network = instantiate(model, meta, start).to(device).train()
    objective = model.objective(int(meta["bands"]), meta["options"]).to(device)
    optimizer = torch.optim.Adam(network.parameters(), lr=request.lr)
    auxiliary = [p for p in objective.parameters() if p.requires_grad]
    aux_optimizer = torch.optim.Adam(auxiliary, lr=request.lr, betas=(0.5, 0.999)) if auxiliary else None
    session = Session(network, objective, optimizer, aux_optimizer, draw, copy.deepcopy(network.state_dict()))
    if training_state:
        optimizer.load_state_dict(training_state["optimizer"])
        objective.load_state_dict(training_state["objective"])
        if aux_optimizer:
            aux_optimizer.load_state_dict(training_state["aux_optimizer"])
        session.history = json.loads(training_state["history"])
        rng.bit_generator.state = json.loads(training_state["rng"])
        torch.set_rng_state(training_state["torch_rng"])
        session.best_state = resumed.state
    else:
        objective.prepare(draw, request.lr, tick)
    return session


def _epochs(session: Session, request, meta, data, steps, patch, validation, normalisation, device, rng,
            report: Progress, cancel, deadline: float) -> bool:
    """Run the remaining epochs; checkpoint after each; True when early stopping, the time budget or a divergence
    ended them.
    `validation` is the held-out batch and the baselines' scores on it (see baseline.py)."""
    history = session.history
    scaler = torch.amp.GradScaler("cuda", enabled=device.type == "cuda")
    precision = "fp16" if device.type == "cuda" else "fp32"
    first_epoch = history["epoch"]
    total = max(1, (request.epochs - first_epoch) * steps)
    replacing = os.path.exists(request.output)  # before this run's first save
    stopped_early = False
    for epoch in range(first_epoch, request.epochs):
        losses = []
        last = history["metrics"][-1]["rmse"] if history["metrics"] else float("nan")
        for step in range(steps):
            check_cancel(cancel, f"training cancelled; {session.kept}" if session.kept else NOTHING_WRITTEN)
            if step and time.perf_counter() > deadline:
                break  # the time budget is spent: validate and keep what this epoch learnt
            losses.append(_step(session, scaler, precision, device))
            done = (epoch - first_epoch) * steps + step + 1
            report(done / total, f"epoch {epoch + 1}/{request.epochs} loss {np.mean(losses):.4f} val rmse {last:.4f}")

        metrics = _evaluate(session.network, *validation, normalisation, device, request.batch)
        if not math.isfinite(metrics["rmse"]):
            _diverged(request, epoch, history, data.warnings)
            _save(request, meta, data, steps, patch, history, session.best_state, True, None)
            session.kept = _kept(request.output, history, replacing)
            return True
        history["train"].append(float(np.mean(losses)))
        history["validation"].append(metrics["rmse"])
        history["metrics"].append(metrics)
        history["epoch"] = epoch + 1
        if metrics["rmse"] < _best_metrics(history).get("rmse", math.inf):
            session.best_state = copy.deepcopy(session.network.state_dict())
            history["best_epoch"], history["bad_epochs"] = epoch + 1, 0
        else:
            history["bad_epochs"] += 1
        stopped_early = history["bad_epochs"] >= request.patience or time.perf_counter() > deadline
        final = epoch + 1 == request.epochs or stopped_early
        _save(request, meta, data, steps, patch, history, session.best_state, final, {
            "network": session.network.state_dict(),
            "optimizer": session.optimizer.state_dict(),
            "aux_optimizer": session.aux_optimizer.state_dict() if session.aux_optimizer else {},
            "objective": session.objective.state_dict(),
            "history": json.dumps(history),
            "rng": json.dumps(rng.bit_generator.state),
            "torch_rng": torch.get_rng_state(),
        })
        session.kept = _kept(request.output, history, replacing)
        report(history["epoch"] / request.epochs,
               f"epoch {epoch + 1}: loss {history['train'][-1]:.4f} val rmse {metrics['rmse']:.4f}")
        if stopped_early:
            break
    return stopped_early


def _kept(path: str, history: dict, replacing: bool) -> str:
    """What the checkpoint at `path` holds after this run saved an epoch: the rest of the message of a run stopped
    after that (a cancel's, or the `left_behind` of an interrupt or error), which must not say nothing was written.
    `replacing`: a file was at `path` before this run, and the first save replaced it."""
    done, best = history["epoch"], history["best_epoch"]
    holds = "the one epoch finished" if done == 1 else f"the best of the {done} epochs finished (epoch {best})"
    return f"the checkpoint {path} holds {holds}" + ("; the earlier file there was replaced" if replacing else "")


@contextmanager
def _kept_when_stopped(session: Session) -> Iterator[None]:
    """The epochs' block; an interrupt, stop signal or error leaving it after this run saved a checkpoint carries
    what the checkpoint holds as `left_behind` (the command line prints it instead of "no output was written"). A
    cancel says so in its own message."""
    try:
        yield
    except FusionCancelled:
        raise
    except BaseException as stop:
        if session.kept:
            stop.left_behind = session.kept
        raise


def _diverged(request, epoch: int, history: dict, warnings) -> None:
    """A held-out score that is not finite: the weights have blown up, and no later step brings them back. With no
    finite epoch before it there is nothing to keep, and this run has written nothing; otherwise the best one is
    kept, without the optimiser state that led here."""
    cause = f"training diverged in epoch {epoch + 1}: the held-out error is not finite (learning rate {request.lr:g})"
    if not history["best_epoch"]:
        raise StfError(f"{cause}, so no checkpoint was written; lower the learning rate, or check that the inputs hold "
                       f"values in their declared scale")
    warnings.add(f"{cause}; training stopped there, and the checkpoint keeps the weights of epoch "
                 f"{history['best_epoch']}, the best before it, without the optimiser state: resuming from it "
                 f"starts a fresh optimiser (lower the learning rate)")


def _step(session: Session, scaler, precision: str, device) -> float:
    """One optimisation step of the network (and of the objective's auxiliary networks); the loss.

    Where the target holds no data it takes the prediction's own (detached) value: no loss term there."""
    inputs, target, valid = session.draw()
    with autocast(device, precision):
        predicted = session.network(inputs)
        target = torch.where(valid, target, predicted.detach().float())
        loss = session.objective.loss(predicted.float(), target, inputs)
    session.optimizer.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    scaler.step(session.optimizer)
    if session.aux_optimizer:
        with autocast(device, precision):
            aux_loss = session.objective.auxiliary_loss(predicted.detach().float(), target, inputs)
        session.aux_optimizer.zero_grad(set_to_none=True)
        scaler.scale(aux_loss).backward()
        scaler.step(session.aux_optimizer)
    scaler.update()
    return float(loss.detach())


def _evaluate(network, batch: Batch, baselines: Dict[str, float], normalisation: Normalisation, device,
              size: int) -> Dict[str, float]:
    """RMSE and MAE (reflectance) of the network on the fixed held-out patches (valid pixels only), next to the
    baselines' scores on them."""
    network.eval()
    _, target, valid = batch
    errors = []
    with torch.no_grad():
        for start in range(0, len(target), size):
            part = tuple({r: a[start : start + size] for r, a in x.items()} if isinstance(x, dict)
                         else x[start : start + size] for x in batch)
            moved, _, _ = to_tensors(part, normalisation, device)
            errors.append(normalisation.restore(network(moved).float()).cpu().numpy() - part[1])
    network.train()
    error = np.concatenate(errors)
    mask = np.broadcast_to(valid, target.shape)
    return {
        "rmse": rmse(error, valid),
        "mae": float(np.mean(np.abs(error[mask]))),
        **baselines,
    }


def _best_metrics(history: dict) -> dict:
    """The held-out metrics of the best epoch so far; none before a first finite score."""
    return history["metrics"][history["best_epoch"] - 1] if history["best_epoch"] else {}


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
    described["validation"] = _best_metrics(history)
    keep = request.keep_training_state or not final
    checkpoint.save(request.output, checkpoint.Checkpoint(described, best_state, training if keep else None))
