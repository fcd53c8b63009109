"""Scale-out on Dask distributed: STARFM on one machine as one process and as 1 and 2 local workers."""
from __future__ import annotations

import pathlib
import subprocess
import sys
import tempfile
import time

import numpy as np
import rasterio

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from devkit.memory_probe import MAKE_INPUTS  # noqa: E402

SIZE = 1536
TILE = 256


def _run(folder: pathlib.Path, name: str, **how) -> float:
    from stf_engine import FusionRequest, fuse

    request = FusionRequest(coarse_target=str(folder / "c2.tif"), fine_reference=str(folder / "fine.tif"),
                            coarse_reference=str(folder / "c1.tif"), output=str(folder / f"{name}.tif"),
                            method="starfm", device="cpu", tile=TILE, batch=1, **how)
    started = time.perf_counter()
    fuse(request)
    return time.perf_counter() - started


def _same(folder: pathlib.Path, a: str, b: str) -> bool:
    with rasterio.open(folder / f"{a}.tif") as one, rasterio.open(folder / f"{b}.tif") as two:
        return bool(np.array_equal(one.read(), two.read()))


def section() -> str:
    with tempfile.TemporaryDirectory() as name:
        folder = pathlib.Path(name)
        subprocess.run([sys.executable, "-c", MAKE_INPUTS, str(folder), str(SIZE)], check=True, timeout=600)
        runs = {
            "one process, 1 thread": _run(folder, "one", threads=1),
            "one process, 2 threads": _run(folder, "two_threads", threads=2),
            "Dask, 1 worker × 1 thread": _run(folder, "dask1", threads=1, workers=1),
            "Dask, 2 workers × 1 thread": _run(folder, "dask2", threads=1, workers=2),
        }
        identical = _same(folder, "one", "dask1") and _same(folder, "one", "dask2")
    mpx = SIZE * SIZE / 1e6
    rows = [f"| {label} | {seconds:.1f} | {mpx / seconds:.3f} |" for label, seconds in runs.items()]
    speedup = runs["Dask, 1 worker × 1 thread"] / runs["Dask, 2 workers × 1 thread"]
    return "\n".join([
        "## Scale-out on Dask distributed (`--workers`)\n",
        f"STARFM (window 31) on a synthetic {SIZE}×{SIZE}×3 scene in {TILE}² tiles, batch 1, on this machine. "
        "Times include starting the local cluster (a few seconds) and each worker's opening of the inputs.\n",
        "| run | seconds | Mpx/s |",
        "|---|---|---|",
        *rows,
        f"\n2 workers against 1: {speedup:.2f}×. Outputs of the Dask runs identical to the one-process, "
        f"1-thread run: {'yes' if identical else 'NO'}.\n",
    ])
