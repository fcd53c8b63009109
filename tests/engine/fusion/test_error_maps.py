"""Error maps written by `fuse`: against the truth, temporal change, seam mask, uncertainty (the expected error)."""
import os
import pathlib

import numpy as np
import pytest
import rasterio
from rasterio.enums import ColorInterp
import torch

from stf_engine import FusionRequest, StfError, fuse
from stf_engine.fusion.error_maps import RAMPS
from stf_engine.core.seams import seam_mask
from stf_engine.fusion.uncertainty import coarse_change, local_std
from stf_engine.cli import main
from stf_engine.methods.catalog import METHODS
from stf_engine.methods.contract import MethodSpec, TileBatch

from devkit.synthetic import scene_set
from helpers.calls import count_calls
from helpers.paths import SAMPLE



def read(path, masked=True):
    with rasterio.open(path) as dataset:
        return dataset.read(masked=masked), dataset.tags(), dataset.descriptions


@pytest.mark.slow
def test_truth_temporal_change_and_seam_maps_on_the_sample(tmp_path):
    truth = str(SAMPLE / "L72002311_SZ_B432_30m.tif")
    result = fuse(
        FusionRequest(
            coarse_target=str(SAMPLE / "MOD09_2002311_SZ_B214_250m.tif"),
            fine_reference=str(SAMPLE / "L72000306_SZ_B432_30m.tif"),
            coarse_reference=str(SAMPLE / "MOD09_2000306_SZ_B214_250m.tif"),
            output=str(tmp_path / "delta.tif"),
            method="delta",
            tile=128,
            error_maps_dir=str(tmp_path / "maps"),
            truth=truth,
        )
    )
    assert {"coarse_residual", "abs_error", "rms_error", "temporal_change", "seam_mask"} <= set(result.error_maps)
    for name, path in result.error_maps.items():
        _, tags, _ = read(path)
        assert tags["DESCRIPTION"] and tags["UNITS"] and tags["STF_RAMP"] == RAMPS[name]

    predicted = read(result.output)[0].astype(np.float64) * 1e-4
    observed = read(truth)[0].astype(np.float64) * 1e-4
    absolute = read(result.error_maps["abs_error"])[0]
    both = ~(predicted.mask.any(0) | observed.mask.any(0))
    assert np.allclose(absolute[:, both], np.abs(predicted - observed)[:, both], atol=1e-6)
    assert np.isnan(read(result.error_maps["abs_error"], masked=False)[0][:, ~both]).all()
    rms = read(result.error_maps["rms_error"])[0][0]
    assert np.allclose(rms[both], np.sqrt(np.mean((predicted - observed)[:, both] ** 2, axis=0)), atol=1e-6)
    assert result.truth_rmse == pytest.approx(np.sqrt(np.mean((predicted - observed)[:, both] ** 2)), rel=1e-6)

    # delta = F1 + (C2 - C1), so |prediction - F1| is the temporal change up to the output's rounding.
    reference = read(str(SAMPLE / "L72000306_SZ_B432_30m.tif"))[0].astype(np.float64) * 1e-4
    change = read(result.error_maps["temporal_change"])[0][0]
    ok = ~(predicted.mask.any(0) | change.mask)
    expected = np.sqrt(np.mean((predicted - reference)[:, ok] ** 2, axis=0))
    assert np.abs(change[ok] - expected).max() < 1e-4

    seams, tags, _ = read(result.error_maps["seam_mask"])
    assert (seams[0].astype(bool) == seam_mask(500, 500, result.tile_borders)).all()


def test_the_coarse_residual_maps_are_nodata_where_the_fused_image_is(tmp_path):
    """A coarse pixel partly over the sample's nodata edge has a residual, but not on its fine pixels without data."""
    result = fuse(FusionRequest(coarse_target=str(SAMPLE / "MOD09_2002311_SZ_B214_250m.tif"),
                                fine_reference=str(SAMPLE / "L72000306_SZ_B432_30m.tif"),
                                coarse_reference=str(SAMPLE / "MOD09_2000306_SZ_B214_250m.tif"),
                                output=str(tmp_path / "delta.tif"), method="delta", coarse_resolution=250,
                                error_maps_dir=str(tmp_path / "maps")))
    gaps = read(result.output)[0].mask.any(0)
    assert gaps.sum() > 1000
    for name in ("coarse_residual", "coarse_residual_rms"):
        values = read(result.error_maps[name], masked=False)[0]
        assert np.isnan(values[:, gaps]).all() and np.isfinite(values[:, ~gaps]).mean() > 0.95, name


def test_a_run_into_a_maps_folder_removes_the_maps_an_earlier_run_left_that_it_does_not_write(tmp_path):
    paths = scene_set(tmp_path, height=48, width=48, bands=2, ratio=4, dtype="int16")
    maps = tmp_path / "maps"
    common = dict(coarse_target=paths["coarse"], fine_reference=paths["fine"], output=str(tmp_path / "fused.tif"),
                  error_maps_dir=str(maps))
    first = fuse(FusionRequest(coarse_reference=paths["coarse_ref"], method="delta", **common))
    assert "temporal_change" in first.error_maps
    (maps / "notes.tif").write_bytes(b"the user's own file")
    (maps / "temporal_change.tif.aux.xml").write_text("<PAMDataset/>")  # its statistics, as QGIS leaves them
    second = fuse(FusionRequest(method="cubic", **common))  # no coarse reference: no temporal change map
    assert "temporal_change" not in second.error_maps
    assert sorted(p.name for p in maps.iterdir()) == sorted([f"{name}.tif" for name in second.error_maps] +
                                                            ["notes.tif"])


def test_a_truth_with_an_alpha_band_is_measured_on_its_data_bands_where_the_alpha_is_set(tmp_path):
    paths = scene_set(tmp_path, height=48, width=48, bands=2, ratio=4, dtype="int16")
    with rasterio.open(paths["truth"]) as truth:
        stored, profile = truth.read(), truth.profile
    alpha = np.full((1, 48, 48), 255, np.int16)
    alpha[0, 10:20, 5:30] = 0
    profile.update(count=3)
    with rasterio.open(tmp_path / "truth_alpha.tif", "w", **profile) as copy:
        copy.colorinterp = [ColorInterp.gray, ColorInterp.undefined, ColorInterp.alpha]  # before the pixels: GDAL 3.12
        copy.write(np.concatenate([stored, alpha]))  # refuses to change a TIFF's ExtraSamples once they are written
    common = dict(coarse_target=paths["coarse"], fine_reference=paths["fine"], coarse_reference=paths["coarse_ref"],
                  method="delta")
    plain = fuse(FusionRequest(output=str(tmp_path / "a.tif"), truth=paths["truth"], error_maps_dir=str(tmp_path / "a"),
                               **common))
    masked = fuse(FusionRequest(output=str(tmp_path / "b.tif"), truth=str(tmp_path / "truth_alpha.tif"),
                                error_maps_dir=str(tmp_path / "b"), **common))
    expected, got = (read(result.error_maps["abs_error"], masked=False)[0] for result in (plain, masked))
    assert got.shape == expected.shape == (2, 48, 48)
    assert np.isnan(got[:, 10:20, 5:30]).all() and np.isfinite(expected[:, 10:20, 5:30]).all()
    keep = alpha[0] > 0
    np.testing.assert_array_equal(got[:, keep], expected[:, keep])


def test_a_truth_of_another_band_count_is_one_line_naming_both_files_before_any_tile(tmp_path, monkeypatch):
    from stf_engine.fusion import run

    predicted = count_calls(monkeypatch, run, "_predict")
    paths = scene_set(tmp_path, height=48, width=48, bands=2, ratio=4, dtype="int16")
    (tmp_path / "other").mkdir()
    other = scene_set(tmp_path / "other", height=48, width=48, bands=3, ratio=4, dtype="int16")
    request = FusionRequest(coarse_target=paths["coarse"], fine_reference=paths["fine"], method="delta",
                            output=str(tmp_path / "out" / "o.tif"), truth=other["truth"],
                            error_maps_dir=str(tmp_path / "out" / "maps"))
    with pytest.raises(StfError) as raised:
        fuse(request)
    assert str(raised.value) == (f"the truth {other['truth']} has 3 bands but the fine reference {paths['fine']} has "
                                 f"2; give as truth the fine image of the target date with the fine reference's bands")
    assert not (tmp_path / "out").exists() and predicted == []


def test_error_map_paths_are_absolute_like_the_output(tmp_path, monkeypatch):
    paths = scene_set(tmp_path, height=48, width=48, bands=2, ratio=4, dtype="int16")
    monkeypatch.chdir(tmp_path)
    result = fuse(FusionRequest(coarse_target=paths["coarse"], fine_reference=paths["fine"], output="fused.tif",
                                coarse_reference=paths["coarse_ref"], method="delta", error_maps_dir="maps"))
    assert os.path.isabs(result.output) and len(result.error_maps) >= 3
    assert all(os.path.isabs(path) and os.path.isfile(path) for path in result.error_maps.values())


def test_cli_maps_need_the_folder(tmp_path, capsys):
    paths = scene_set(tmp_path)
    code = main(["fuse", "--coarse", paths["coarse"], "--fine", paths["fine"], "--out", str(tmp_path / "o.tif"), "--uncertainty"])
    assert code == 2 and "--error-maps" in capsys.readouterr().err


def test_local_std_and_coarse_change_terms():
    image = torch.zeros(1, 2, 6, 6)
    image[:, :, :, 3:] = 0.2  # a vertical edge between columns 2 and 3
    valid = torch.ones(1, 1, 6, 6, dtype=torch.bool)
    texture = local_std(image, valid)[0, 0]
    assert torch.all(texture[:, [0, 5]] == 0) and torch.all(texture[:, [2, 3]] > 0.05)
    valid[..., 3:] = False  # the other side of the edge missing: no texture left, none where there is no data
    assert local_std(image, valid).abs().max() < 1e-7
    batch = TileBatch(fine_reference=image, coarse_target=image + 0.3, coarse_reference=image,
                      coarse_reference_2=image + 0.1, valid=torch.ones(1, 1, 6, 6, dtype=torch.bool))
    assert torch.allclose(coarse_change(batch, batch.coarse_reference_or_simulated(2)), torch.full((1, 1, 6, 6), 0.2))  # the smaller of two changes


@pytest.mark.slow
def test_uncertainty_predicts_the_error_on_the_sample_and_shows_no_tiles(tmp_path):
    """Shenzhen 2000 → 2002: the map's mean is near the real RMSE and it ranks pixels like the real error
    (bench/results.md has the figures of every real case); tiled equals whole."""
    inputs = dict(coarse_target=str(SAMPLE / "MOD09_2002311_SZ_B214_250m.tif"),
                  fine_reference=str(SAMPLE / "L72000306_SZ_B432_30m.tif"),
                  coarse_reference=str(SAMPLE / "MOD09_2000306_SZ_B214_250m.tif"),
                  truth=str(SAMPLE / "L72002311_SZ_B432_30m.tif"), coarse_resolution=250, uncertainty=True)
    maps = {}
    for tile in (0, 160):
        result = fuse(FusionRequest(output=str(tmp_path / f"{tile}.tif"), method="fitfc", tile=tile,
                                    error_maps_dir=str(tmp_path / f"maps{tile}"), **inputs))
        maps[tile] = read(result.error_maps["uncertainty"])[0][0]
    expected, tags, _ = read(result.error_maps["uncertainty"])
    error = read(result.error_maps["rms_error"])[0][0]
    assert "disagreement" in tags["DESCRIPTION"] and tags["UNITS"] == "reflectance"
    np.testing.assert_allclose(maps[160].filled(np.nan), maps[0].filled(np.nan), rtol=1e-4, atol=1e-6)
    ok = ~(expected[0].mask | error.mask)
    rmse = float(np.sqrt(np.mean(error[ok] ** 2)))
    assert 1 / 1.5 < expected[0][ok].mean() / rmse < 1.5
    ranks = lambda values: np.argsort(np.argsort(values))  # noqa: E731
    assert np.corrcoef(ranks(expected[0][ok]), ranks(error[ok]))[0, 1] > 0.4  # the goal; 0.405 when written


def test_learned_methods_own_prediction_counts_in_the_disagreement(tmp_path, monkeypatch):
    """A 'learned' method far from every classic method raises the expected error by its distance from them; its
    fused output is read back, not predicted again (a deep model would run twice)."""

    paths, maps = scene_set(tmp_path), {}
    for offset in (0.0, 0.2):
        calls = []

        def build(context, offset=offset):
            return lambda batch: calls.append(len(batch.origins)) or batch.fine_reference + offset

        spec = MethodSpec(name=f"test_offset_{offset}", description="test", required=("coarse_target", "fine_reference"),
                          optional=(), halo=lambda context: 0, needs_weights=True, build=build)
        monkeypatch.setitem(METHODS, spec.name, spec)
        result = fuse(FusionRequest(coarse_target=paths["coarse"], fine_reference=paths["fine"], method=spec.name,
                                    weights="unused.pt", output=str(tmp_path / f"{spec.name}.tif"), tile=40,
                                    error_maps_dir=str(tmp_path / f"maps_{offset}"), uncertainty=True))
        maps[offset], tags, _ = read(result.error_maps["uncertainty"])
        assert spec.name in tags["DESCRIPTION"] and np.isfinite(maps[offset]).all()
        assert sum(calls) == result.tiles > 1
    assert maps[0.2].mean() > maps[0.0].mean() + 0.02


def test_a_mean_of_methods_lends_its_members_surveys_to_the_uncertainty_map(tmp_path, monkeypatch):
    """FSDAF in the run's mean is classified once: the map reuses the run's survey rather than classifying again."""
    from stf_engine.methods import fsdaf

    paths, calls = scene_set(tmp_path), count_calls(monkeypatch, fsdaf, "kmeans")
    result = fuse(FusionRequest(coarse_target=paths["coarse"], fine_reference=paths["fine"],
                                coarse_reference=paths["coarse_ref"], method="fsdaf+delta", tile=40,
                                output=str(tmp_path / "mean.tif"), error_maps_dir=str(tmp_path / "maps"),
                                uncertainty=True))
    expected, tags, _ = read(result.error_maps["uncertainty"])
    assert "fsdaf" in tags["DESCRIPTION"] and np.isfinite(expected.compressed()).all() and expected.count() > 0
    assert len(calls) == 1


def test_the_uncertainty_map_reports_progress_within_each_batch(tmp_path):
    """Each batch runs every other method: tens of seconds on a large scene, during which the bar stood still (it
    moved once a batch); the methods' own ticks now report inside the batch's share, and the bar only rises."""
    paths, reports = scene_set(tmp_path, height=64, width=64), []
    fuse(FusionRequest(coarse_target=paths["coarse"], fine_reference=paths["fine"],
                       coarse_reference=paths["coarse_ref"], output=str(tmp_path / "f.tif"), method="delta", tile=32,
                       batch=4, uncertainty=True, coarse_resolution=120, error_maps_dir=str(tmp_path / "maps")),
         progress=lambda fraction, message: reports.append((fraction, message)))
    within = [fraction for fraction, message in reports if message.startswith("error maps: uncertainty: tile")]
    assert len(set(within)) > 5, reports
    fractions = [fraction for fraction, _ in reports]
    assert fractions == sorted(fractions)
