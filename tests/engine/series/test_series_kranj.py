"""`fuse_series` on the real Kranj series: every date, leave-one-out accuracy against the single-reference
delta, cloud masks, a simulated abrupt change, and resume after an interruption."""
from __future__ import annotations

import dataclasses
import threading

import numpy as np
import pytest
import rasterio
import torch

from devkit.series import DAYS, SERIES_OPTIONS, changed_copy, iso, kranj_series, landsat, modis, rmse, write_mask
from devkit.series import read_reflectance as read
from devkit.series import single_reference_delta
from stf_engine import SeriesRequest, StfError, fuse_series
from stf_engine.methods import catalog, fsdaf

from helpers.calls import count_calls
from helpers.clusters import loopback_cluster

CLOUD = (slice(5, 25), slice(10, 30))
"""A block of a reference covered by a (simulated) cloud."""
CHANGED = (slice(16, 32), slice(16, 32))
"""One coarse pixel of the coarse target altered (MODIS is 16 fine pixels a side here)."""
# float32 sums on a GPU (the default device when there is one) round by batch size: relative agreement there
ON_GPU_ROUNDING = 1e-6 if torch.cuda.is_available() else 0


def reliability(path):
    with rasterio.open(path) as dataset:
        return dataset.read(1)


def series(tmp_path, **kwargs) -> SeriesRequest:
    tmp_path.mkdir(parents=True, exist_ok=True)
    csv = kranj_series(tmp_path, **{k: kwargs.pop(k) for k in ("hide", "fine", "coarse", "fine_masks", "coarse_masks")
                                    if k in kwargs})
    return SeriesRequest(series=str(csv), output_dir=str(tmp_path / "out"), **SERIES_OPTIONS, **kwargs)


@pytest.fixture(scope="module")
def without_077(tmp_path_factory):
    folder = tmp_path_factory.mktemp("kranj")
    return fuse_series(series(folder, hide=(77,))), folder


def test_every_coarse_date_gets_a_fused_image_and_a_reliability_map(without_077):
    result, folder = without_077
    assert [d.date for d in result.dates] == [iso(day) for day in DAYS]
    assert all(d.status == "fused" for d in result.dates)
    for date in result.dates:
        values, valid = read(date.fused)
        errors = reliability(date.reliability)
        assert valid.mean() > 0.95 and np.isfinite(errors[valid]).all() and (errors[valid] >= 0).all()
    own = next(d for d in result.dates if d.date == iso(68))  # a date with its own Landsat image keeps it
    observed, clear = read(landsat(68))
    fused, _ = read(own.fused)
    np.testing.assert_allclose(fused[:, clear], observed[:, clear], atol=1e-6)
    assert (reliability(own.reliability)[clear] == 0).all() and 0 < own.observed_rmse < 0.05
    with rasterio.open(result.stack) as stack:
        assert stack.count == 6 * len(DAYS)
        assert stack.descriptions[6].startswith(iso(DAYS[1]))
    assert "dates" in (folder / "out" / "series.json").read_text()


@pytest.mark.parametrize("hidden, nearest", [(77, 68), (93, 77)])
def test_leaving_a_landsat_date_out_the_series_beats_the_single_reference_delta_by_10_percent(
        without_077, tmp_path, hidden, nearest):
    if hidden == 77:
        result, _ = without_077
    else:
        result = fuse_series(series(tmp_path, hide=(hidden,), dates=(iso(hidden),)))
    date = next(d for d in result.dates if d.date == iso(hidden))
    assert date.status == "fused" and len(date.references) == 2
    truth, truth_valid = read(landsat(hidden))
    baseline, baseline_valid = single_reference_delta(tmp_path, hidden, nearest)
    fused, fused_valid = read(date.fused)
    where = truth_valid & baseline_valid
    assert fused_valid[where].all()
    assert rmse(fused, truth, where) <= 0.9 * rmse(baseline, truth, where)


def test_a_masked_cloud_never_reaches_the_output_and_its_pixels_are_flagged_less_reliable(without_077, tmp_path):
    clear, _ = without_077
    cloudy = changed_copy(landsat(68), tmp_path / "cloudy_068.tif", _cloud)
    mask = write_mask(landsat(68), tmp_path / "mask_068.tif", *CLOUD)
    result = fuse_series(series(tmp_path, hide=(77,), fine={68: cloudy}, fine_masks={68: mask}, dates=(iso(77),)))
    masked = next(d for d in result.dates if d.date == iso(77))
    unmasked = next(d for d in clear.dates if d.date == iso(77))
    truth, valid = read(landsat(77))
    fused, _ = read(masked.fused)
    reference, _ = read(unmasked.fused)
    inside = np.zeros_like(valid)
    inside[CLOUD] = True
    inside &= valid
    assert fused[:, inside].max() < 0.5  # the cloud's 0.9 reflectance is nowhere
    assert rmse(fused, truth, inside) <= 1.3 * rmse(reference, truth, inside)
    assert (reliability(masked.reliability)[inside] > reliability(unmasked.reliability)[inside]).mean() > 0.9
    assert masked.restored > unmasked.restored

    unmasked_cloud = fuse_series(series(tmp_path / "no_mask", hide=(77,), fine={68: cloudy}, dates=(iso(77),)))
    leaked, _ = read(unmasked_cloud.dates[0].fused)
    assert leaked[:, inside].max() > 0.5  # without the mask the cloud does reach it: the mask is what stops it


def test_a_masked_coarse_target_pixel_is_restored_in_time_counted_and_flagged_less_reliable(without_077, tmp_path):
    clear, _ = without_077
    mask = write_mask(modis(77), tmp_path / "modis_mask_077.tif", *CHANGED)
    masked = fuse_series(series(tmp_path, hide=(77,), coarse_masks={77: mask}, dates=(iso(77),))).dates[0]
    unmasked = next(d for d in clear.dates if d.date == iso(77))
    expected = reliability(unmasked.reliability)
    inside = np.zeros(expected.shape, bool)
    inside[CHANGED] = True
    assert np.isfinite(expected).all(), "MODIS covers the whole grid on every date"
    assert unmasked.coarse_restored == 0 and masked.coarse_restored == pytest.approx(inside.mean(), abs=0.01)
    raised = reliability(masked.reliability) > expected
    assert raised[inside].mean() > 0.9


@pytest.mark.parametrize("name", ["series.json", "series.vrt"])
def test_a_series_list_named_like_the_manifest_or_stack_in_the_output_folder_is_refused_not_overwritten(tmp_path,
                                                                                                       name):
    listed = kranj_series(tmp_path)
    text = listed.read_text()
    renamed = listed.rename(tmp_path / name)
    with pytest.raises(StfError, match=f"would overwrite the series list: .*{name}; choose another path"):
        fuse_series(SeriesRequest(series=str(renamed), output_dir=str(tmp_path), **SERIES_OPTIONS))
    assert renamed.read_text() == text


def _cloud(values: np.ndarray) -> np.ndarray:
    values[(slice(None),) + CLOUD] = 9000
    return values


def test_an_abrupt_change_falls_back_to_the_coarse_image_and_is_flagged(without_077, tmp_path):
    clear, _ = without_077
    flooded = changed_copy(modis(80), tmp_path / "modis_080_changed.tif", _flood)
    result = fuse_series(series(tmp_path, hide=(77,), coarse={80: flooded}, dates=(iso(80),)))
    date = result.dates[0]
    before = next(d for d in clear.dates if d.date == iso(80))
    assert date.fallback > 0.05 and before.fallback == 0.0
    fused, _ = read(date.fused)
    coarse, _ = read(flooded, scale=1.0)
    np.testing.assert_allclose(fused[(slice(None),) + CHANGED], coarse[(slice(None),) + CHANGED], atol=1e-3)
    errors, usual = reliability(date.reliability), reliability(before.reliability)
    block = np.zeros(errors.shape, bool)
    block[CHANGED] = True
    assert errors[block].min() > np.nanpercentile(usual, 99)
    assert np.nanmedian(errors[~block]) < 1.5 * np.nanmedian(usual[~block])


def _flood(values: np.ndarray) -> np.ndarray:
    values[(slice(None),) + CHANGED] -= 0.25
    return values


def test_a_resumed_run_gives_the_files_of_an_uninterrupted_one(tmp_path):
    dates = tuple(iso(day) for day in (70, 71, 72))
    whole = fuse_series(series(tmp_path / "whole", hide=(77,), dates=dates))
    cancel = threading.Event()

    def stop_at_second_date(fraction, message):
        if message.startswith(dates[1]):
            cancel.set()

    interrupted = series(tmp_path / "resumed", hide=(77,), dates=dates)
    with pytest.raises(StfError):
        fuse_series(interrupted, stop_at_second_date, cancel)
    written = sorted(p.name for p in (tmp_path / "resumed" / "out").iterdir())
    assert written == [f"fused_{dates[0]}.tif", f"reliability_{dates[0]}.tif", "series.json"]  # no work or partial
    resumed = fuse_series(interrupted)
    assert [d.status for d in resumed.dates] == ["kept", "fused", "fused"]
    for first, second in zip(whole.dates, resumed.dates):
        for name in ("fused", "reliability"):
            a, b = reliability(getattr(first, name)), reliability(getattr(second, name))
            np.testing.assert_array_equal(a, b)
    assert [d.status for d in fuse_series(interrupted).dates] == ["kept"] * 3
    assert [d.status for d in fuse_series(series(tmp_path / "resumed", hide=(77,), dates=dates,
                                                 overwrite=True)).dates] == ["fused"] * 3


def test_dates_as_tasks_on_dask_workers_give_the_same_files(without_077, tmp_path):
    pytest.importorskip("distributed")
    alone, _ = without_077
    dates = tuple(iso(day) for day in (70, 77, 85))
    spread = fuse_series(series(tmp_path, hide=(77,), dates=dates, workers=2, threads=1))
    assert [d.status for d in spread.dates] == ["fused"] * 3
    for date in spread.dates:
        same = next(d for d in alone.dates if d.date == date.date)
        assert (date.references, date.method) == (same.references, same.method)
        np.testing.assert_array_equal(read(date.fused)[0], read(same.fused)[0])
        np.testing.assert_array_equal(reliability(date.reliability), reliability(same.reliability))


def test_dask_date_tasks_take_the_callers_coarse_shift_instead_of_registering_again(tmp_path, monkeypatch):
    """With --register, the caller estimates the shift once; its date tasks (on in-process workers here) reuse it."""
    pytest.importorskip("distributed")
    from stf_engine.inputs import aligned

    estimated = count_calls(monkeypatch, aligned, "estimate_offset")
    dates = tuple(iso(day) for day in (70, 85))
    with loopback_cluster(n_workers=2, processes=False) as local:
        result = fuse_series(series(tmp_path, hide=(77,), dates=dates, register=True, threads=1,
                                    scheduler=local.scheduler_address))
    assert [d.status for d in result.dates] == ["fused"] * 2
    assert len(estimated) == 1


def test_dask_date_tasks_classify_each_reference_once_on_a_worker(tmp_path, monkeypatch):
    pytest.importorskip("distributed")
    calls = count_calls(monkeypatch, fsdaf, "kmeans")
    with loopback_cluster(n_workers=1, processes=False) as local:
        result = fuse_series(series(tmp_path, dates=tuple(iso(day) for day in (70, 71, 72, 73)), method="fsdaf",
                                    threads=1, scheduler=local.scheduler_address))
    references = {d.references[0] for d in result.dates}
    assert [d.status for d in result.dates] == ["fused"] * 4 and len(calls) == len(references) < 4


def test_dates_with_the_same_references_run_stacked_and_give_the_files_of_one_date_at_a_time(tmp_path, monkeypatch):
    dates = tuple(iso(day) for day in range(69, 77))
    one_by_one = fuse_series(series(tmp_path / "one", hide=(77,), dates=dates, method="starfm", date_batch=1))
    sizes, spec = [], catalog.METHODS["starfm"]

    def build(context):
        method = spec.build(context)
        return lambda batch: sizes.append(batch.coarse_target.shape[0]) or method(batch)

    monkeypatch.setitem(catalog.METHODS, "starfm", dataclasses.replace(spec, build=build))
    stacked = fuse_series(series(tmp_path / "stacked", hide=(77,), dates=dates, method="starfm", date_batch=3))
    assert sorted(sizes) == [2, 3, 3], "8 dates with the same references: 3 + 3 + 2 a batch (one tile)"
    for first, second in zip(one_by_one.dates, stacked.dates):
        assert (first.references, first.method, first.status) == (second.references, second.method, "fused")
        for name in ("fused", "reliability"):
            np.testing.assert_allclose(reliability(getattr(second, name)), reliability(getattr(first, name)),
                                       rtol=ON_GPU_ROUNDING, atol=1e-6)


def test_each_reference_is_classified_once_for_all_its_dates(tmp_path, monkeypatch):
    calls = count_calls(monkeypatch, fsdaf, "kmeans")
    result = fuse_series(series(tmp_path, dates=tuple(iso(day) for day in range(69, 86) if day != 77),
                                method="fsdaf"))
    references = {d.references[0] for d in result.dates}
    assert len(result.dates) == 16 and len(calls) == len(references) == 2
