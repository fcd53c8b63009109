"""`make demo` on the real Shenzhen sample: every output is written and STARFM beats the baselines."""
import pathlib

import pytest
import rasterio

from stf_engine.cli import demo
from helpers.paths import ROOT



@pytest.mark.slow
def test_demo_writes_outputs_and_starfm_beats_baselines(tmp_path, capsys):
    rows = {method: scores for method, scores, _ in demo.run(str(ROOT / "resources" / "sample"), str(tmp_path))}
    printed = capsys.readouterr().out
    fused = tmp_path / "fused_starfm_2002.tif"
    with rasterio.open(fused) as out, rasterio.open(ROOT / "resources" / "sample" / demo.FINE_2000) as fine:
        assert (out.crs, out.transform, out.dtypes, out.nodata) == (fine.crs, fine.transform, fine.dtypes, fine.nodata)
    for name in ("error_maps/coarse_residual_rms.tif", "error_maps/abs_error.tif", "evaluation/quicklook.png",
                 "evaluation/metrics.json"):
        assert (tmp_path / name).exists(), name
        assert str(tmp_path / name) in printed
    assert rows["starfm"]["rmse"] < rows["delta"]["rmse"] < rows["cubic"]["rmse"]
    assert rows["starfm"]["ssim"] > rows["cubic"]["ssim"]
