"""Peak-memory probes for subprocess tests and benchmarks (Linux)."""
import json
import subprocess
import sys
import textwrap

HIGH_WATER = textwrap.dedent(
    """
    def high_water_mb():
        # VmHWM belongs to this process's own address space; ru_maxrss would inherit the parent's peak.
        with open("/proc/self/status") as status:
            line = next(line for line in status if line.startswith("VmHWM:"))
        return int(line.split()[1]) / 1024
    """
)
"""Source defining `high_water_mb()`, the peak resident memory of the process that runs it; prepend it
to the code a probe subprocess runs."""

MAKE_INPUTS = textwrap.dedent(
    """
    import sys
    import numpy as np, rasterio
    from rasterio.transform import from_origin
    from rasterio.windows import Window

    folder, size = sys.argv[1], int(sys.argv[2])
    profile = dict(driver="GTiff", crs="EPSG:32649", tiled=True, blockxsize=512, blockysize=512, compress="deflate")
    with rasterio.open(f"{folder}/fine.tif", "w", width=size, height=size, count=3, dtype="int16",
                       transform=from_origin(500000, 2500000, 30, 30), nodata=-9999, **profile) as dst:
        cols = np.arange(size)
        for row in range(0, size, 512):
            rows = np.arange(row, min(row + 512, size))[:, None]
            strip = (1500 + 500 * np.sin(cols / 40.0) * np.cos(rows / 30.0)).astype("int16")
            dst.write(np.stack([strip, strip + 100, strip + 200]), window=Window(0, row, size, len(rows)))
    coarse = size // 16
    for name, gain in (("c1", 1.0), ("c2", 1.1)):
        with rasterio.open(f"{folder}/{name}.tif", "w", width=coarse, height=coarse, count=3, dtype="float32",
                           transform=from_origin(500000, 2500000, 480, 480), **profile) as dst:
            dst.write(np.full((3, coarse, coarse), 0.15 * gain, "float32"))
    """
)

FUSE = HIGH_WATER + textwrap.dedent(
    """
    import json, sys
    from stf_engine import FusionRequest, fuse

    folder = sys.argv[1]
    import torch  # counted in 'before': the interpreter, torch and GDAL before any raster is read
    before = high_water_mb()
    result = fuse(FusionRequest(coarse_target=f"{folder}/c2.tif", fine_reference=f"{folder}/fine.tif",
                                coarse_reference=f"{folder}/c1.tif", output=f"{folder}/out.tif", method="delta"))
    peak = high_water_mb()
    print(json.dumps({"peak_mb": peak, "before_mb": before, "tiles": result.tiles}))
    """
)


def measure_fusion(folder, size=8000) -> dict:
    """Write the inputs in one process, fuse in a fresh one, and return its peak RSS report."""
    subprocess.run([sys.executable, "-c", MAKE_INPUTS, str(folder), str(size)], check=True, timeout=600)
    completed = subprocess.run([sys.executable, "-c", FUSE, str(folder)], capture_output=True, text=True, timeout=900)
    if completed.returncode != 0:
        raise RuntimeError(completed.stderr[-2000:])
    return json.loads(completed.stdout.strip().splitlines()[-1])
