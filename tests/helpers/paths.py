"""Where the bundled data lives: the real Shenzhen sample, the demo checkpoints and the small real test sets."""
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "resources" / "sample"
WEIGHTS = ROOT / "resources" / "weights"
TEST_DATA = ROOT / "tests" / "data"
ENGINE = ROOT / "engine" / "stf_engine"
PLUGIN = ROOT / "stf_qgis_plugin"
