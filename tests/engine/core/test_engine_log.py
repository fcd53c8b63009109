"""The engine logs as a library does: its warnings reach the caller in the results, and a log only where the
program configured one; never Python's last-resort stderr (qgis_process printed each warning twice)."""
import subprocess
import sys

WARN_AND_CONFIGURE = """
import logging
from stf_engine.core.progress import Warnings
Warnings().add("the first warning")
logging.basicConfig(format="%(name)s: %(message)s")
Warnings().add("the second warning")
"""


def test_engine_warnings_reach_stderr_only_through_a_configured_log():
    done = subprocess.run([sys.executable, "-c", WARN_AND_CONFIGURE], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stderr == "stf_engine: the second warning\n"
