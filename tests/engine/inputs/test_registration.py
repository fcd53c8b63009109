"""Co-registration: a known coarse misregistration is recovered, and the real Shenzhen one is corrected."""
import pathlib

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from stf_engine import FusionRequest, fuse
from stf_engine.cli import main
from devkit.synthetic import ORIGIN, fine_transform, textured_scene, write
from helpers.paths import SAMPLE



def test_known_shift_of_synthetic_coarse_raster_is_recovered(tmp_path):
    fine = textured_scene(160, 160, bands=2, seed=3)
    fine_path = write(tmp_path / "fine.tif", fine, fine_transform())
    # Coarse image of the same scene (4×4 block means), georeferenced 3 px east and 2 px south of the truth.
    coarse = fine.reshape(2, 40, 4, 40, 4).mean(axis=(2, 4))
    wrong = from_origin(ORIGIN[0] + 3 * 30, ORIGIN[1] - 2 * 30, 120, 120)
    coarse_path = write(tmp_path / "coarse.tif", coarse, wrong)
    result = fuse(FusionRequest(coarse_target=coarse_path, fine_reference=fine_path, output=str(tmp_path / "o.tif"),
                                method="cubic", register=True))
    assert result.coarse_shift == pytest.approx((-3.0, -2.0), abs=0.35)


def test_a_known_shift_opens_the_coarse_raster_once_and_gives_the_registered_output(tmp_path, monkeypatch):
    from stf_engine.inputs import aligned

    fine = textured_scene(96, 96, bands=2, seed=4)
    fine_path = write(tmp_path / "fine.tif", fine, fine_transform())
    coarse = fine.reshape(2, 24, 4, 24, 4).mean(axis=(2, 4))
    coarse_path = write(tmp_path / "coarse.tif", coarse, from_origin(ORIGIN[0] + 60, ORIGIN[1], 120, 120))
    common = dict(coarse_target=coarse_path, fine_reference=fine_path, method="cubic")
    registered = fuse(FusionRequest(output=str(tmp_path / "registered.tif"), register=True, **common))
    opened, open_on_grid = [], aligned.open_on_grid
    monkeypatch.setattr(aligned, "open_on_grid", lambda *a, **k: opened.append(a[2]) or open_on_grid(*a, **k))
    known = fuse(FusionRequest(output=str(tmp_path / "known.tif"), coarse_shift=registered.coarse_shift, **common))
    assert sorted(opened) == sorted(["coarse target", "fine reference"]) and registered.coarse_shift != (0.0, 0.0)
    with rasterio.open(known.output) as one, rasterio.open(registered.output) as other:
        np.testing.assert_array_equal(one.read(), other.read())


@pytest.mark.slow
def test_shenzhen_modis_offset_is_found_and_lowers_error(tmp_path, capsys):
    truth = rasterio.open(SAMPLE / "L72002311_SZ_B432_30m.tif").read().astype(float)

    def rmse(path):
        fused = rasterio.open(path).read().astype(float)
        valid = (fused != 32767).all(axis=0)
        return np.sqrt(((fused - truth)[:, valid] ** 2).mean())

    common = ["fuse", "--coarse", str(SAMPLE / "MOD09_2002311_SZ_B214_250m.tif"),
              "--fine", str(SAMPLE / "L72000306_SZ_B432_30m.tif"),
              "--coarse-ref", str(SAMPLE / "MOD09_2000306_SZ_B214_250m.tif"),
              "--method", "delta", "--coarse-res", "250"]
    assert main(common + ["--out", str(tmp_path / "plain.tif")]) == 0
    assert main(common + ["--out", str(tmp_path / "registered.tif"), "--register"]) == 0
    shift_line = [line for line in capsys.readouterr().out.splitlines() if line.startswith("coarse rasters shifted")]
    east, south = (float(word) for word in shift_line[0].replace(",", "").split() if word[0] in "+-")
    # The MODIS georeference sits ~167 m east and ~160 m south of the Landsat one (5.5 px of 30 m).
    assert -6.5 < east < -4.5 and -6.5 < south < -3.5
    assert rmse(tmp_path / "registered.tif") < 0.95 * rmse(tmp_path / "plain.tif")
