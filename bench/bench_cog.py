"""What `--cog` costs: the same delta run on a 6000² scene written as a plain tiled GeoTIFF and as a COG."""
from __future__ import annotations

import pathlib
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from devkit.memory_probe import MAKE_INPUTS  # noqa: E402

SIZE = 6000


def _run(folder: pathlib.Path, cog: bool) -> float:
    from stf_engine import FusionRequest, fuse

    request = FusionRequest(coarse_target=str(folder / "c2.tif"), fine_reference=str(folder / "fine.tif"),
                            coarse_reference=str(folder / "c1.tif"), output=str(folder / f"out_{cog}.tif"),
                            method="delta", device="cpu", cog=cog)
    started = time.perf_counter()
    fuse(request)
    return time.perf_counter() - started


def section() -> str:
    with tempfile.TemporaryDirectory() as name:
        folder = pathlib.Path(name)
        subprocess.run([sys.executable, "-c", MAKE_INPUTS, str(folder), str(SIZE)], check=True, timeout=600)
        plain, cog = _run(folder, False), _run(folder, True)
        sizes = {flag: (folder / f"out_{flag}.tif").stat().st_size / 2**20 for flag in (False, True)}
    return "\n".join([
        "## Cloud Optimized GeoTIFF output (`--cog`)\n",
        f"`delta` on a {SIZE}×{SIZE}×3 int16 scene, CPU. A COG needs the whole image before its overviews and "
        "layout can be written, so `--cog` is a second pass over the finished file (GDAL's COG driver); the "
        "plain tiled GeoTIFF stays the default.\n",
        "| output | seconds | size (MB) |",
        "|---|---|---|",
        f"| plain tiled GeoTIFF | {plain:.1f} | {sizes[False]:.0f} |",
        f"| COG with overviews | {cog:.1f} | {sizes[True]:.0f} |",
        f"\nThe COG costs {cog - plain:.1f} s more ({cog / plain - 1:.0%}).\n",
    ])
