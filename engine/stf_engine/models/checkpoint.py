"""Self-describing checkpoints: weights plus the metadata needed to check and normalise a run."""
from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from typing import Any, Dict, FrozenSet, Optional

import torch

from .. import roles as role_names
from ..core.outputs import replace_output, why_write_failed
from ..errors import StfError

FORMAT = "stf-checkpoint"
FORMAT_VERSION = 1
CHECKED_META = ("model", "bands", "roles")
"""What a checkpoint's metadata must hold for `check_fits` to tell whether it fits a run."""
ZIP_START, PICKLE_START = b"PK\x03\x04", b"\x80"
"""First bytes of the zip archive `torch.save` writes, and of a bare pickle."""
TRAIN_ONE = "give the .pt file `stf train` wrote (or train one)"
"""What to do about a file that is no checkpoint."""


@dataclass
class Checkpoint:
    meta: Dict[str, Any]
    """model, model_version, bands, band_names, roles, ratio, scales, normalisation, training, validation, halo."""
    state: Dict[str, torch.Tensor]
    training: Optional[Dict[str, Any]] = None
    """Optimiser, RNG and history needed to resume; absent from slim (shipped) checkpoints."""


def save(path: str, checkpoint: Checkpoint) -> None:
    """Write atomically: an interrupted save leaves the previous file intact."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    payload = {"format": FORMAT, "format_version": FORMAT_VERSION, "meta": checkpoint.meta, "state": checkpoint.state}
    if checkpoint.training is not None:
        payload["training"] = checkpoint.training
    partial = f"{path}.partial"
    try:
        try:
            with open(partial, "wb") as handle:  # Python opens the path: PyTorch's writer mangles non-ASCII on Windows
                torch.save(payload, handle)
        except (OSError, RuntimeError) as exc:  # torch reports a full disk as a RuntimeError from its writer
            reason = why_write_failed(str(exc), os.path.dirname(os.path.abspath(path)), getattr(exc, "errno", None))
            raise StfError(f"cannot write the checkpoint {path}: {reason}") from None
        replace_output(partial, path)
    finally:
        if os.path.exists(partial):
            os.remove(partial)


def load(path: str) -> Checkpoint:
    """Read a checkpoint (tensors and plain values only) or raise StfError saying why it cannot be used."""
    if os.path.isdir(path):
        raise StfError(f"the weights file {path} is a folder; give the .pt file in it")
    if not os.path.isfile(path):
        raise StfError(f"weights file not found: {path}")
    try:
        with warnings.catch_warnings():  # a foreign pickle's protocol: the error below says what the file is
            warnings.filterwarnings("ignore", message="Detected pickle protocol")
            payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # torch raises many types for foreign or damaged files
        raise StfError(_why_unreadable(path)) from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise StfError(f"the weights file {path} is not a checkpoint STF wrote: it is a PyTorch file without STF's "
                       f"checkpoint mark; {TRAIN_ONE}")
    if payload.get("format_version", 0) > FORMAT_VERSION:
        raise StfError(f"checkpoint {path} was written by a newer STF; update the plugin")
    meta = payload.get("meta")
    missing = [key for key in CHECKED_META if not isinstance(meta, dict) or key not in meta]
    if missing or "state" not in payload:
        lacks = f"no {' or '.join(missing)} in its metadata" if missing else "no weights"
        raise StfError(f"the weights file {path} is a damaged STF checkpoint: it holds {lacks}; {TRAIN_ONE}")
    return Checkpoint(meta, payload["state"], payload.get("training"))


def _why_unreadable(path: str) -> str:
    """Why PyTorch cannot read the file at `path`, told by its first bytes, and what to do."""
    with open(path, "rb") as handle:
        start = handle.read(len(ZIP_START))
    if start == ZIP_START:
        return (f"the weights file {path} is damaged or incomplete (a copy or download cut short?); copy it again, "
                f"or train new weights with `stf train`")
    if not start:
        why = "the file is empty"
    elif start.startswith(PICKLE_START):
        why = "it is a Python pickle of objects other than weights, which STF does not load"
    else:
        why = "it is not a PyTorch file at all"
    return f"the weights file {path} is not a checkpoint STF wrote: {why}; {TRAIN_ONE}"


def check_model(meta: Dict[str, Any], model: str, path: str) -> None:
    """Refuse a checkpoint of another model, naming the method it is for."""
    if meta["model"] != model:
        raise StfError(f"{path} is a '{meta['model']}' checkpoint; use --method {meta['model']} or other weights")


def check_fits(meta: Dict[str, Any], model: str, bands: int, given: FrozenSet[str], path: str) -> None:
    """Refuse a checkpoint trained for another model, band count or set of inputs, saying how to fix it."""
    check_model(meta, model, path)
    if meta["bands"] != bands:
        raise StfError(
            f"{path} was trained on {meta['bands']} bands but the fine reference has {bands}; "
            f"select matching bands or train on these rasters"
        )
    trained = frozenset(meta["roles"])
    if trained != given:
        label = lambda names: ", ".join(role_names.LABELS[r] for r in sorted(names))  # noqa: E731
        asked = lambda names: ", ".join(role_names.asked_for(r) for r in sorted(names))  # noqa: E731
        problems, changes = [], []
        if trained - given:
            problems.append(f"it needs the {label(trained - given)}")
            changes.append(f"give the {asked(trained - given)}")
        if given - trained:
            problems.append(f"it was trained without the {label(given - trained)}")
            changes.append(f"leave out the {asked(given - trained)}")
        raise StfError(f"{path} does not fit these inputs: {'; '.join(problems)}; {' and '.join(changes)}, or give "
                       f"--weights trained with the same inputs (`stf train`)")
