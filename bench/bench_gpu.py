"""`make bench-gpu`: each method end to end (read, fuse, write) on a synthetic 10980×10980×6 scene on the GPU,
fp32 against bf16, next to the same run's I/O alone (the floor no GPU can beat)."""
from __future__ import annotations

import dataclasses
import os
import pathlib
import sys
import tempfile
import threading
import time
from typing import Dict, List, Optional

import numpy as np
import rasterio
import torch
from rasterio.transform import from_origin
from rasterio.windows import Window

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from devkit.checkpoints import save_random  # noqa: E402
from stf_engine import FusionRequest, fuse, roles  # noqa: E402
from stf_engine.methods import catalog  # noqa: E402

SIZE = int(os.environ.get("STF_BENCH_GPU_SIZE", "10980"))
"""Fine pixels a side: a Sentinel-2 tile by default; smaller for a quick check of the bench itself."""
BANDS, RATIO, FINE_PIXEL = 6, 16, 30.0
RUNS = [("starfm", "fp32"), ("ganstfm", "fp32"), ("ganstfm", "bf16"), ("marstfn", "fp32"), ("marstfn", "bf16"),
        ("edcstfn", "fp32"), ("edcstfn", "bf16")]
"""(method, precision) pairs measured; STARFM keeps its sums in fp32 whatever the precision."""
GOALS = {"starfm": 10.0, "ganstfm": 20.0, "marstfn": 60.0}
"""Seconds for the whole 10980² run on one H100 (issue 12)."""
STRIP = 512
PROFILE = dict(driver="GTiff", crs="EPSG:32649", tiled=True, blockxsize=512, blockysize=512, compress="deflate",
               predictor=2, num_threads="ALL_CPUS", bigtiff="IF_SAFER")


def _pattern(rows: np.ndarray, cols: np.ndarray, band: int, gain: float) -> np.ndarray:
    """Reflectance × 1e4 with fields and texture, evaluated at pixel centres in fine-pixel units."""
    fields = ((rows // 97 + cols // 131) % 4) * (120 + 40 * band)
    texture = 500 * np.sin(cols / 40.0 + band) * np.cos(rows / 30.0)
    return gain * (1500 + 150 * band + fields + texture)


def write_scene(folder: pathlib.Path) -> Dict[str, str]:
    """Fine reference (int16, deflate, the way Landsat/Sentinel-2 products come) and two coarse dates."""
    paths = {role: str(folder / f"{role}.tif") for role in ("fine", "coarse_ref", "coarse")}
    with rasterio.open(paths["fine"], "w", width=SIZE, height=SIZE, count=BANDS, dtype="int16", nodata=-9999,
                       transform=from_origin(500000, 2500000, FINE_PIXEL, FINE_PIXEL), **PROFILE) as dst:
        cols = np.arange(SIZE)
        for row in range(0, SIZE, STRIP):
            rows = np.arange(row, min(row + STRIP, SIZE))[:, None]
            strip = np.stack([_pattern(rows, cols, band, 1.0) for band in range(BANDS)]).astype("int16")
            dst.write(strip, window=Window(0, row, SIZE, len(rows)))
    coarse = -(-SIZE // RATIO)
    centres = np.arange(coarse) * RATIO + RATIO / 2
    for role, gain in (("coarse_ref", 1.0), ("coarse", 1.12)):
        values = np.stack([_pattern(centres[:, None], centres[None, :], band, gain) for band in range(BANDS)])
        with rasterio.open(paths[role], "w", width=coarse, height=coarse, count=BANDS, dtype="int16",
                           transform=from_origin(500000, 2500000, FINE_PIXEL * RATIO, FINE_PIXEL * RATIO),
                           **PROFILE) as dst:
            dst.write(values.astype("int16"))
    return paths


class GpuSampler:
    """GPU utilisation (%) sampled every 0.1 s on a thread while a run lasts (NVML through torch)."""

    def __init__(self):
        self.samples: List[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.1):
            try:
                self.samples.append(torch.cuda.utilization())
            except Exception:  # no NVML here: the table says n/a
                return

    def __enter__(self) -> "GpuSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def mean(self) -> Optional[float]:
        return float(np.mean(self.samples)) if self.samples else None


def io_floor(paths: Dict[str, str], folder: pathlib.Path, name: str, weights: Optional[str]) -> float:
    """Seconds of method `name`'s run with the method replaced by a copy of the fine reference: the same tiles,
    halo, reads and writes, no computation. The copy is in the catalog for this run only."""
    spec = catalog.METHODS[name]
    floor = dataclasses.replace(spec, name=f"{name}-io", build=lambda context: lambda batch: batch.fine_reference)
    catalog.METHODS[floor.name] = floor
    try:
        return run(paths, folder, floor.name, "fp32", weights)["seconds"]
    finally:
        del catalog.METHODS[floor.name]


def run(paths: Dict[str, str], folder: pathlib.Path, method: str, precision: str, weights: Optional[str]) -> dict:
    """One whole fuse() on the GPU: seconds, mean GPU utilisation and peak GPU memory."""
    output = folder / f"{method}_{precision}.tif"
    coarse_reference = paths["coarse_ref"] if catalog.METHODS[method].accepts(roles.COARSE_REFERENCE) else None
    request = FusionRequest(coarse_target=paths["coarse"], fine_reference=paths["fine"],
                            coarse_reference=coarse_reference, output=str(output), method=method,
                            weights=weights, device="cuda", precision=precision)
    torch.cuda.reset_peak_memory_stats()
    with GpuSampler() as sampler:
        started = time.perf_counter()
        result = fuse(request)
        seconds = time.perf_counter() - started
    output.unlink()
    return {"seconds": seconds, "utilisation": sampler.mean, "memory": torch.cuda.max_memory_allocated() / 2**30,
            "halo": result.halo, "tile": result.tile, "warnings": result.warnings}


def _row(method: str, precision: str, measured: dict, floor: float) -> str:
    seconds = measured["seconds"]
    utilisation = "n/a" if measured["utilisation"] is None else f"{measured['utilisation']:.0f}"
    goal = GOALS.get(method)
    verdict = "" if goal is None else (
        f"< {goal:.0f} s and ≤ 2× floor: {'met' if seconds < goal and seconds <= 2 * floor else 'not met'}")
    return (f"| {method} | {precision} | {measured['tile']} | {measured['halo']} | {seconds:.1f} | "
            f"{SIZE * SIZE / 1e6 / seconds:.1f} | {floor:.1f} | {seconds / floor:.2f}× | {utilisation} | "
            f"{measured['memory']:.1f} | {verdict} |")


def section() -> str:
    title = f"## GPU end to end (issue 12): synthetic {SIZE}×{SIZE}×{BANDS} scene, read → fuse → write"
    if not torch.cuda.is_available():
        return f"{title}\n\nNot measured: this machine has no CUDA GPU (`make bench-gpu` on a GPU machine).\n"
    rows = [
        title, "",
        f"GPU: {torch.cuda.get_device_name(0)}; {os.cpu_count()} CPU cores; rasterio {rasterio.__version__} "
        f"(GDAL {rasterio.__gdal_version__}). Inputs: int16 fine reference (deflate, 512² blocks) and two coarse "
        f"dates at {RATIO}× the pixel size; output int16 GeoTIFF as the engine writes it. Default tile and batch; "
        "deep models with freshly initialised weights (speed does not depend on them). `floor` is the same run "
        "(tiles, halo, reads, alignment, writes) with the method replaced by a copy of the fine reference; "
        "GPU % is NVML's utilisation sampled every 0.1 s over the whole run.", "",
        "| method | precision | tile | halo | seconds | Mpx/s | floor s | × floor | GPU % | peak GPU GiB | goal |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    with tempfile.TemporaryDirectory(dir=os.environ.get("STF_BENCH_DIR")) as name:
        folder = pathlib.Path(name)
        started = time.perf_counter()
        paths = write_scene(folder)
        print(f"scene written in {time.perf_counter() - started:.0f} s", file=sys.stderr)
        floors: Dict[str, float] = {}
        checkpoints: Dict[str, str] = {}
        warnings = set()
        for method, precision in RUNS:
            if method in ("ganstfm", "marstfn", "edcstfn") and method not in checkpoints:
                given = (roles.COARSE_REFERENCE,) if catalog.METHODS[method].accepts(roles.COARSE_REFERENCE) else ()
                checkpoints[method] = save_random(folder / f"{method}.pt", method, bands=BANDS, given=given,
                                                  ratio=RATIO)
            weights = checkpoints.get(method)
            try:
                if method not in floors:
                    floors[method] = io_floor(paths, folder, method, weights)
                measured = run(paths, folder, method, precision, weights)
            except Exception as exc:  # one failed run is a row saying so, not the end of the bench
                rows.append(f"| {method} | {precision} | failed: {str(exc).splitlines()[0][:120]} |")
                continue
            warnings.update(measured["warnings"])
            rows.append(_row(method, precision, measured, floors[method]))
            print(rows[-1], file=sys.stderr)
    if warnings:
        rows += ["", "Warnings the runs gave: " + "; ".join(sorted(warnings))]
    return "\n".join(rows) + "\n"


if __name__ == "__main__":
    print(section())
