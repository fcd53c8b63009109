"""Malformed inputs of every kind end in success or one StfError, never a crash, and never change an input."""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from devkit.synthetic import fine_transform, scene_set, write
from stf_engine import FusionRequest, StfError, check, fuse

CASES = 48


def malformed(folder: Path, rng: np.random.Generator, index: int) -> str:
    """One broken or extreme raster file (its kind drawn from the seeded generator)."""
    path = folder / f"case{index}.tif"
    kind = index % 8
    if kind == 0:  # random bytes
        path.write_bytes(rng.integers(0, 256, int(rng.integers(0, 4096)), dtype=np.uint8).tobytes())
    elif kind == 1:  # a valid raster truncated at a random offset
        good = write(folder / f"whole{index}.tif", rng.random((3, 64, 64), dtype=np.float32), fine_transform())
        data = Path(good).read_bytes()
        path.write_bytes(data[: int(rng.integers(0, len(data)))])
    elif kind == 2:  # an empty file
        path.write_bytes(b"")
    elif kind == 3:  # a 1×1 raster
        write(path, rng.random((3, 1, 1), dtype=np.float32), fine_transform())
    elif kind == 4:  # unusual dtypes
        dtype = ["uint8", "int32", "float64", "uint16"][int(rng.integers(0, 4))]
        write(path, (rng.random((3, 40, 40)) * 200).astype(dtype), fine_transform(), dtype=dtype)
    elif kind == 5:  # almost all nodata
        data = rng.random((3, 40, 40), dtype=np.float32)
        data[:, rng.random((40, 40)) < 0.999] = -9999
        write(path, data, fine_transform(), nodata=-9999)
    elif kind == 6:  # all nodata
        write(path, np.full((3, 40, 40), -9999, np.float32), fine_transform(), nodata=-9999)
    else:  # NaN and infinity, some of them not marked as nodata
        data = rng.random((3, 40, 40), dtype=np.float32)
        data[rng.random(data.shape) < 0.05] = np.nan
        data[rng.random(data.shape) < 0.01] = np.inf
        write(path, data, fine_transform())
    return str(path)


def digests(paths) -> dict:
    return {p: hashlib.sha256(Path(p).read_bytes()).hexdigest() for p in paths}


@pytest.mark.slow
def test_malformed_inputs_end_in_success_or_stf_error_and_inputs_stay_untouched(tmp_path):
    good_folder = tmp_path / "good"
    good_folder.mkdir()
    good = scene_set(good_folder, height=40, width=40, bands=3, ratio=4, dtype="int16")
    rng = np.random.default_rng(20261122)
    outcomes = {"ok": 0, "StfError": 0}
    for index in range(CASES):
        bad = malformed(tmp_path, rng, index)
        role = ["fine_reference", "coarse_target", "coarse_reference"][index % 3]
        paths = {"fine_reference": good["fine"], "coarse_target": good["coarse"], "coarse_reference": good["coarse_ref"]}
        paths[role] = bad
        before = digests(paths.values())
        request = FusionRequest(output=str(tmp_path / f"out{index}.tif"), method="starfm", tile=16, **paths)
        for step in (check, fuse):
            try:
                step(request)
                outcomes["ok"] += 1
            except StfError as exc:
                assert "\n" not in str(exc), exc
                outcomes["StfError"] += 1
        assert digests(paths.values()) == before, f"case {index} changed an input"
    assert not [p for p in tmp_path.iterdir() if ".partial" in p.name or p.name.endswith(".lock")]
    assert outcomes["ok"] and outcomes["StfError"], outcomes
