"""Every request's numbers are checked by the engine: a wrong type or a value out of range is a StfError naming the
field's flag and its range, for the Python API as for Processing and the CLI (never a TypeError deep in a run)."""
import datetime
import math
import re
from pathlib import Path

import numpy as np
import pytest

from stf_engine import (
    EvaluationRequest, FusionRequest, SeriesRequest, StfError, TrainingRequest, evaluate, parse_evaluation_scales,
    parse_mask_rules, parse_options, parse_scales,
)
from stf_engine.core.options import check_real, check_whole


def fusion(**fields):
    return FusionRequest(coarse_target="c.tif", fine_reference="f.tif", output="o.tif", **fields)


@pytest.mark.parametrize("fields, text", [
    (dict(tile="abc"), "--tile must be at least 0, a whole number; got 'abc'"),
    (dict(tile=None), "--tile must be at least 0"),
    (dict(tile=1), "--tile must be 0 (the whole raster) or at least 16; got 1"),
    (dict(halo="x"), "--halo must be at least 0, a whole number; got 'x'"),
    (dict(halo=-1), "--halo must be at least 0"),
    (dict(batch=1.5), "--batch must be at least 1, a whole number; got 1.5"),
    (dict(threads=2.0), "--threads must be at least 1, a whole number; got 2.0"),
    (dict(workers=0), "--workers must be at least 1"),
    (dict(coarse_shift=(math.nan, 0.0)), "--coarse-shift must be two finite numbers"),
    (dict(coarse_shift=(1.0, math.inf)), "--coarse-shift must be two finite numbers"),
    (dict(coarse_shift=(1.0,)), "--coarse-shift must be two finite numbers"),
    (dict(coarse_resolution="abc"), "--coarse-res must be a finite number > 0; got 'abc'"),
    (dict(coarse_resolution=math.nan), "--coarse-res must be a finite number > 0; got nan"),
    (dict(scales={"fine_reference": math.nan}), "--scale fine_reference: the scale must be a non-zero finite number"),
    (dict(scales={"coarse_target": (1e-4, math.inf)}), "--scale coarse_target: the scale must be a non-zero"),
    (dict(scales={"pan": 0}), "--scale pan: the scale must be a non-zero finite number and the offset finite, got 0"),
])
def test_a_fusion_request_refuses_wrong_numbers_as_it_is_built(fields, text):
    with pytest.raises(StfError) as raised:
        fusion(**fields)
    assert text in str(raised.value)


def test_a_fusion_request_takes_any_whole_numbers_and_an_unset_halo():
    request = fusion(tile=np.int64(0), halo=None, batch=2, coarse_shift=(0.5, -1))
    assert request.tile == 0 and request.coarse_shift == (0.5, -1)
    assert fusion(tile=np.int64(16)).tile == 16


@pytest.mark.parametrize("fields, text", [
    (dict(max_gap="30"), "--max-gap must be at least 1, a whole number; got '30'"),
    (dict(tile=-1), "--tile must be at least 0"),
    (dict(tile=15), r"--tile must be 0 \(the whole raster\) or at least 16; got 15"),
    (dict(date_batch=0), "--date-batch must be at least 1"),
    (dict(coarse_resolution=-480.0), "--coarse-res must be a finite number > 0"),
    (dict(scales={"fine_reference": "1e-4"}), "--scale fine_reference: the scale must be a non-zero finite number"),
])
def test_a_series_request_refuses_wrong_numbers(fields, text):
    with pytest.raises(StfError, match=text):
        SeriesRequest(series="s.csv", output_dir="out", **fields)


@pytest.mark.parametrize("fields, text", [
    (dict(steps_per_epoch=0), r"--steps \(steps_per_epoch\) must be at least 1"),
    (dict(patience=-1), "--patience must be at least 1"),
    (dict(epochs=0), "--epochs must be at least 1"),
    (dict(patch=4), "--patch must be at least 8"),
    (dict(batch="8"), "--batch must be at least 1, a whole number; got '8'"),
    (dict(lr=0.0), "--lr must be a finite number > 0; got 0.0"),
    (dict(lr=math.inf), "--lr must be a finite number > 0; got inf"),
    (dict(minutes=math.nan), "--minutes must be a finite number > 0; got nan"),
    (dict(minutes=-1), "--minutes must be a finite number > 0"),
    (dict(validation_fraction=1.0), r"--val-fraction \(validation_fraction\) must be a finite number between 0 and 1"),
    (dict(seed=-1), "--seed must be at least 0"),
    (dict(coarse_resolution=0), "--coarse-res must be a finite number > 0"),
    (dict(scales={"coarse_target": math.inf}), "--scale coarse_target: the scale must be a non-zero finite number"),
])
def test_a_training_request_refuses_wrong_numbers(fields, text):
    with pytest.raises(StfError, match=text):
        TrainingRequest(model="ganstfm", output="m.pt", **fields)


@pytest.mark.parametrize("fields, text", [
    (dict(tile="abc"), "--tile must be at least 0, a whole number; got 'abc'"),
    (dict(ratio=0), "--ratio must be a finite number > 0; got 0"),
    (dict(data_range=math.nan), "--data-range must be a finite number > 0; got nan"),
    (dict(window=0), "window must be at least 1"),
    (dict(scales={"truth": math.nan}), "--scale truth: the scale must be a non-zero finite number"),
    (dict(scales={"fine": 1e-4}), "scales: unknown role 'fine'; use one of prediction, truth, fine_reference, coarse"),
])
def test_evaluate_refuses_wrong_numbers_before_reading_a_file(tmp_path, fields, text):
    with pytest.raises(StfError, match=text):
        evaluate(EvaluationRequest(str(tmp_path / "missing.tif"), str(tmp_path / "missing_too.tif"), **fields))


@pytest.mark.parametrize("items, text", [
    (["truth=nan"], "--scale truth=nan: the scale must be a non-zero finite number and the offset finite, got 'nan'"),
    (["truth=0"], "the scale must be a non-zero finite number"),
    (["truth=1e-4:inf"], "the offset finite, got '1e-4:inf'"),
    (["fine=1e-4"], "--scale expects ROLE=FACTOR or ROLE=SCALE:OFFSET with ROLE one of prediction, truth"),
    (["truth"], "--scale expects ROLE=FACTOR"),
])
def test_evaluation_scales_are_parsed_and_checked_by_the_engine(items, text):
    with pytest.raises(StfError, match=re.escape(text)):
        parse_evaluation_scales(items)


def test_evaluation_scales_take_a_factor_or_a_scale_and_offset_for_each_role():
    assert parse_evaluation_scales(["truth=1e-4", "fine-reference=2.75e-5:-0.2", "coarse=1/10000"]) == {
        "truth": 1e-4, "fine_reference": (2.75e-5, -0.2), "coarse": 1e-4}


@pytest.mark.parametrize("parse, text, said", [
    (parse_scales, "fine=1e-4, fine=2e-4", "the scale of 'fine' is given twice; give it once"),
    (lambda text: parse_options("starfm", text), "window=15, window=17",
     "option 'window' is given twice (window=15, window=17); give it once"),
    (parse_mask_rules, "fine=nonzero, fine=landsat-qa", "the fine mask rule is given twice (nonzero, landsat-qa)"),
])
def test_a_setting_given_twice_is_refused_not_overridden(parse, text, said):
    with pytest.raises(StfError, match=re.escape(said)):
        parse(text)


def test_scales_take_spaces_around_their_roles_as_options_do():
    assert parse_scales("fine = 1e-4 , coarse= 1") == parse_scales("fine=1e-4,coarse=1")


def test_the_checks_take_numpy_numbers_and_refuse_bools():
    check_whole(np.int32(3), "--batch", 1)
    check_real(np.float32(0.5), "--lr")
    check_whole(None, "--halo", 0, optional=True)
    with pytest.raises(StfError, match="got True"):
        check_whole(True, "--batch", 1)
    with pytest.raises(StfError, match="got False"):
        check_real(False, "--lr", optional=True)


def test_paths_may_be_pathlib_and_other_field_types_are_one_line(tmp_path):
    """Paths are text or os.PathLike (kept as text); switches, bands, the method, scales, dates and mask rules of
    the wrong type are refused as the request is built, naming the field."""
    request = FusionRequest(coarse_target=Path("c.tif"), fine_reference="f.tif", output=tmp_path / "o.tif",
                            error_maps_dir=Path("maps"))
    assert (request.coarse_target, request.output, request.error_maps_dir) == ("c.tif", str(tmp_path / "o.tif"),
                                                                               "maps")
    assert TrainingRequest(model="ganstfm", output=Path("m.pt"), fine_reference=Path("f.tif")).fine_reference == "f.tif"
    assert EvaluationRequest(Path("p.tif"), Path("t.tif")).prediction == "p.tif"
    series = SeriesRequest(Path("s.csv"), Path("out"), date_from=datetime.date(2020, 3, 8), date_to=20200401,
                           dates="2020-03-15, 2020-03-16", mask_rules="fine=landsat-qa")
    assert (series.series, series.date_from, series.date_to) == ("s.csv", "2020-03-08", "20200401")
    assert series.dates == ("2020-03-15", "2020-03-16") and series.mask_rules == {"fine": "landsat-qa"}
    for build, text in [
        (lambda: fusion(truth=5), "truth must be a path (text or a pathlib.Path), got 5"),
        (lambda: fusion(register="false"), "register must be True or False, got 'false'"),
        (lambda: fusion(uncertainty=1), "uncertainty must be True or False, got 1"),
        (lambda: fusion(bands="3,2,1"), "bands must be a list of 1-based band numbers, e.g. (3, 2, 1); got '3,2,1'"),
        (lambda: fusion(bands=2), "bands must be a list of 1-based band numbers"),
        (lambda: fusion(method=None), "method must be a method's name, e.g. 'starfm'; got None"),
        (lambda: fusion(scales="fine=1e-4"), "scales are a mapping by role, e.g. {'coarse_target': 1e-4}; got 'fin"),
        (lambda: fusion(scales={"fine": 5e-4}), "scales: unknown role 'fine'; use one of coarse_target, "),
        (lambda: TrainingRequest(model="ganstfm", output="m.pt", scales={"bogus": 7}), "unknown role 'bogus'"),
        (lambda: SeriesRequest("s.csv", "out", date_from=3.5), "dates are text such as '2020-03-08'"),
        (lambda: SeriesRequest("s.csv", "out", mask_rules={"fien": "landsat-qa"}), "unknown mask role 'fien'"),
        (lambda: SeriesRequest("s.csv", "out", mask_rules={"fine": "foo"}), "unknown mask rule 'foo'"),
        (lambda: EvaluationRequest("p.tif", "t.tif", plots="no"), "plots must be True or False"),
        (lambda: parse_options("starfm", 5), "expected text such as 'a, b' or a list of items; got 5"),
        (lambda: FusionRequest(coarse_target="c.tif", fine_reference="f.tif", output="/vsimem/o.tif"),
         "output must be a path on disk, not a GDAL virtual file (/vsimem/o.tif): STF writes its outputs beside"),
        (lambda: fusion(error_maps_dir="/vsis3/b/maps"), "error_maps_dir must be a path on disk, not a GDAL virtual"),
        (lambda: SeriesRequest("s.csv", "/vsimem/out"), "output_dir must be a path on disk"),
        (lambda: TrainingRequest(model="ganstfm", output="/vsimem/m.pt"), "output must be a path on disk"),
        (lambda: EvaluationRequest("p.tif", "t.tif", out_dir="/vsimem/r"), "out_dir must be a path on disk"),
    ]:
        with pytest.raises(StfError) as raised:
            build()
        assert text in str(raised.value)


@pytest.mark.parametrize("run", ["fuse", "fuse_dates", "fuse_series", "train", "evaluate"])
def test_a_progress_or_cancel_of_the_wrong_kind_is_one_line_before_any_work(tmp_path, run):
    """`cancel=True` or a progress that is not callable is refused as the run starts, not met deep inside it."""
    import stf_engine

    request = {"fuse": fusion(), "fuse_dates": [fusion()], "fuse_series": SeriesRequest("s.csv", str(tmp_path)),
               "train": TrainingRequest(model="ganstfm", output=str(tmp_path / "m.pt")),
               "evaluate": EvaluationRequest("p.tif", "t.tif")}[run]
    with pytest.raises(StfError, match=r"^cancel must be an object with is_set\(\), such as a threading.Event, "
                                       r"not bool$"):
        getattr(stf_engine, run)(request, None, True)
    with pytest.raises(StfError, match="^progress must be a callable progress\\(fraction, message\\), not str$"):
        getattr(stf_engine, run)(request, "verbose")


def test_a_methods_halo_is_asked_by_its_name_or_its_spec():
    from stf_engine import list_methods, method_halo

    given = ("coarse_target",)
    assert method_halo("starfm", 16, given) == method_halo(list_methods()["starfm"], 16, given)
    with pytest.raises(StfError, match="unknown method 'nope'"):
        method_halo("nope", 16, ())
