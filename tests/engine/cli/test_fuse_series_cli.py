"""`stf fuse-series`: the closing table on the real Kranj series, and one `error:` line (exit 2) for bad input,
with nothing left in the output folder."""
from __future__ import annotations

import os

import pytest

from devkit.series import iso, kranj_series
from stf_engine.cli import main

KRANJ_ARGS = ["--coarse-res", "480", "--scale", "fine=1e-4"]


def run(args, capsys):
    code = main(["fuse-series"] + args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_fuse_series_prints_a_row_per_date_and_writes_them(tmp_path, capsys):
    csv = kranj_series(tmp_path, hide=(77,))
    out = tmp_path / "out"
    code, stdout, _ = run(["--series", str(csv), "--out", str(out), "--from", "2020-03-16", "--to", "2020-03-17",
                           "--method", "delta"] + KRANJ_ARGS, capsys)
    assert code == 0
    rows = [line for line in stdout.splitlines() if line.startswith("2020-")]
    assert [row.split()[:2] for row in rows] == [[iso(76), "fused"], [iso(77), "fused"]]
    assert "2020-03-08 + 2020-04-02" in rows[0]
    assert sorted(os.listdir(out)) == ["fused_2020-03-16.tif", "fused_2020-03-17.tif", "reliability_2020-03-16.tif",
                                       "reliability_2020-03-17.tif", "series.json", "series.vrt"]


@pytest.mark.parametrize("extra, text", [
    (["--mask-rule", "fine=cloudy"], "unknown mask rule 'cloudy'"),
    (["--mask-rule", "pan=landsat-qa"], "pan"),
    (["--dates", "2020-05-05"], "2020-05-05 have no coarse image"),
    (["--from", "March"], "'March' is not a date"),
    (["--max-gap", "0"], "max-gap"),
    (["--date-batch", "0"], "date-batch must be at least 1"),
    (["--method", "nonsense"], "nonsense"),
    (["--scale", "fine=1e-4:x"], "fine=1e-4:x"),
])
def test_bad_series_arguments_are_one_error_line(tmp_path, capsys, extra, text):
    csv = kranj_series(tmp_path)
    code, _, err = run(["--series", str(csv), "--out", str(tmp_path / "out")] + extra, capsys)
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert code == 2 and len(errors) == 1 and text in errors[0], err
    assert "Traceback" not in err
    assert not (tmp_path / "out").exists() or not os.listdir(tmp_path / "out")


def test_a_damaged_mask_names_its_date_and_leaves_no_output(tmp_path, capsys):
    broken = tmp_path / "mask_068.tif"
    broken.write_bytes(b"II*\x00" + b"\x00" * 64)
    csv = kranj_series(tmp_path, hide=(77,), fine_masks={68: broken})
    out = tmp_path / "out"
    code, _, err = run(["--series", str(csv), "--out", str(out), "--dates", iso(77)] + KRANJ_ARGS, capsys)
    assert code == 2 and "fine mask of 2020-03-08" in err and "damaged" in err
    assert not [name for name in os.listdir(out) if name.endswith(".tif") or name.startswith(".stf-series-")]


def test_a_missing_series_is_one_line(tmp_path, capsys):
    code, _, err = run(["--series", str(tmp_path / "nowhere.csv"), "--out", str(tmp_path / "out")], capsys)
    assert code == 2 and "series not found" in err
