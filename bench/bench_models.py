"""Deep models: parameters, training and inference speed (CPU, and CUDA when present), and RMSE of the
shipped demo checkpoints on the Shenzhen sample (2000 pair → 2002) against STARFM and `delta`."""
from __future__ import annotations

import pathlib
import tempfile
import time

import numpy as np
import rasterio
import torch

from stf_engine import FusionRequest, fuse
from stf_engine.core.options import defaults
from stf_engine.models import MODELS

ROOT = pathlib.Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "resources" / "sample"
WEIGHTS = ROOT / "resources" / "weights"
BANDS, TRAIN_PATCH, TRAIN_BATCH, INFER_SIDE = 3, 64, 4, 256


def _inputs(model, batch: int, side: int, device) -> dict:
    used = model.roles_for({"coarse_reference"})
    return {r: torch.randn(batch, BANDS, side, side, device=device) for r in sorted(used)}


def _speeds(name: str, device: torch.device):
    """(training patches/s at 64×64, batch 4; inference Mpx/s on 256×256) after one warm-up step."""
    model = MODELS[name]
    network = model.network(BANDS, model.roles_for({"coarse_reference"}), 8, defaults(model.options)).to(device)
    objective = model.objective(BANDS, defaults(model.options)).to(device)
    optimizer = torch.optim.Adam(network.parameters(), lr=1e-4)
    inputs = _inputs(model, TRAIN_BATCH, TRAIN_PATCH, device)
    target = inputs["fine_reference"].clone()
    timings = []
    for _ in range(3):
        started = time.perf_counter()
        loss = objective.loss(network(inputs), target, inputs)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        timings.append(time.perf_counter() - started)
    network.eval()
    image = _inputs(model, 1, INFER_SIDE, device)
    with torch.no_grad():
        network(image)
        started = time.perf_counter()
        network(image)
        if device.type == "cuda":
            torch.cuda.synchronize()
        infer = time.perf_counter() - started
    return TRAIN_BATCH / np.mean(timings[1:]), INFER_SIDE**2 / 1e6 / infer


def _rmse(path: str, truth: str) -> float:
    with rasterio.open(path) as fused, rasterio.open(truth) as reference:
        valid = (fused.read_masks(1) > 0) & (reference.read_masks(1) > 0)
        error = (fused.read().astype(np.float64) - reference.read()) * 1e-4
    return float(np.sqrt((error[:, valid] ** 2).mean()))


def _sample_rmse(method: str, folder: str) -> float:
    request = FusionRequest(
        coarse_target=str(SAMPLE / "MOD09_2002311_SZ_B214_250m.tif"),
        fine_reference=str(SAMPLE / "L72000306_SZ_B432_30m.tif"),
        coarse_reference=str(SAMPLE / "MOD09_2000306_SZ_B214_250m.tif"),
        output=f"{folder}/{method}.tif",
        method=method,
        coarse_resolution=250,
        device="cpu",
    )
    return _rmse(fuse(request).output, str(SAMPLE / "L72002311_SZ_B432_30m.tif"))


def section() -> str:
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    rows = [
        "## Deep models (issue 5): size, speed and accuracy of the demo checkpoints",
        "",
        f"Speeds on random data with {BANDS} bands: training = patches/s ({TRAIN_PATCH}×{TRAIN_PATCH}, batch "
        f"{TRAIN_BATCH}, loss and backward included); inference = Mpx/s on one {INFER_SIDE}×{INFER_SIDE} tile. "
        "RMSE (reflectance) of the fusion of the Shenzhen sample's 2000 pair into 2002 against the 2002 Landsat "
        "truth, whole raster, coarse pixel 250 m; the demo checkpoints were trained on the reverse direction "
        "(see docs/models.md) and never saw the 2002 truth.",
        "",
        "| method | parameters | " + " | ".join(f"train patches/s ({d.type}) | infer Mpx/s ({d.type})" for d in devices)
        + " | RMSE on sample |",
        "|---|---|" + "---|---|" * len(devices) + "---|",
    ]
    with tempfile.TemporaryDirectory() as folder:
        for name, model in MODELS.items():
            network = model.network(BANDS, model.roles_for({"coarse_reference"}), 8, defaults(model.options))
            parameters = sum(p.numel() for p in network.parameters())
            speeds = " | ".join(f"{t:.1f} | {i:.3f}" for t, i in (_speeds(name, d) for d in devices))
            rows.append(f"| {name} | {parameters / 1e6:.2f} M | {speeds} | {_sample_rmse(name, folder):.4f} |")
        blanks = " | ".join("" for _ in range(2 * len(devices)))
        for baseline in ("starfm", "delta", "cubic"):
            rows.append(f"| {baseline} (no training) | – | {blanks} | {_sample_rmse(baseline, folder):.4f} |")
    return "\n".join(rows) + "\n"
