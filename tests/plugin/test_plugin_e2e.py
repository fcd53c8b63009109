"""`make test` runs the real-desktop end-to-end check when QGIS and xvfb-run are installed (skipped otherwise)."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

RUNNER = Path(__file__).parent / "e2e" / "run_e2e.py"


def load_runner():
    spec = importlib.util.spec_from_file_location("stf_e2e_runner", RUNNER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
@pytest.mark.qgis_desktop
def test_plugin_in_the_real_qgis_desktop(tmp_path):
    runner = load_runner()
    if not runner.available():
        pytest.skip("qgis or xvfb-run is not installed")
    result = runner.run(tmp_path / "e2e", timeout=300)
    assert result["ok"], result.get("error")
    assert result["exit_status"] == 0, f"QGIS did not exit cleanly after File → Exit (see {tmp_path}/e2e/qgis.log)"
    assert result["layers"][0].startswith("fused (") and len(result["layers"]) >= 3
    assert result["fused_legends"] == [["Band 1", "Band 2", "Band 3"]] * 2  # the dialog's run and Processing's
    assert max(result["dialog_heights"]) <= 740
    for name in ("dialog.png", "map.png", "qgis.png", "qgis_with_dialog.png"):
        assert (tmp_path / "e2e" / name).stat().st_size > 10_000
