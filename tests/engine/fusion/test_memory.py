"""Memory is bounded by tile and batch size: an 8000×8000 fusion stays far below the raster's size."""
import pytest

from devkit.memory_probe import measure_fusion


@pytest.mark.slow
def test_fusing_8000_square_keeps_peak_rss_under_1_5_gb(tmp_path):
    report = measure_fusion(tmp_path)
    assert report["tiles"] == 256
    # One band of the output alone is 128 MB as int16 and the three inputs on the fine grid 1.5 GB as float32.
    assert report["peak_mb"] < 1500, report
