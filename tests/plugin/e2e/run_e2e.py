"""End to end in the real QGIS desktop: build the zip, install and enable it in a fresh profile, run QGIS under
xvfb-run with `in_qgis.py` as its startup code, and check the result file it writes and how QGIS exited after
File → Exit (exit 0 only when both are right).

python tests/plugin/e2e/run_e2e.py [--out out/e2e] [--timeout 300]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))

from stf_qgis_plugin import packaging  # noqa: E402

PROFILE = "stf-e2e"
QGIS_SETTINGS = """[PythonPlugins]
stf_qgis_plugin=true
processing=true

[qgis]
checkVersion=false
showTips=false

[app]
askToSaveMemoryLayers=false
"""
"""askToSaveMemoryLayers: the outputs lie in a temporary folder (a test's tmp_path), which QGIS counts as temporary
layers and asks about, in a modal box nobody answers, on File → Exit."""


def available() -> bool:
    """Both the QGIS desktop and xvfb-run are installed."""
    return bool(shutil.which("qgis") and shutil.which("xvfb-run"))


def prepare_profile(profiles: Path, archive: Path) -> None:
    """A fresh profile with the zip installed and the plugin enabled, as after Plugins → Install from ZIP."""
    profile = profiles / "profiles" / PROFILE
    packaging.install(archive, profile / "python" / "plugins")
    settings = profile / "QGIS" / "QGIS3.ini"
    settings.parent.mkdir(parents=True, exist_ok=True)
    settings.write_text(QGIS_SETTINGS)


def qgis_environment(out: Path) -> dict:
    """QGIS's Python plus torch from this project's venv (the step docs/plugin.md asks users to do with pip)."""
    dropped = ("QT_QPA_PLATFORM", "QGIS_CUSTOM_CONFIG_PATH")  # a real display; the fresh profile, not a test's
    env = {key: value for key, value in os.environ.items() if key not in dropped}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [sysconfig.get_paths()["purelib"], env.get("PYTHONPATH")]))
    env["STF_E2E_OUT"] = str(out)
    env["STF_E2E_SAMPLE"] = str(ROOT / "resources" / "sample")
    return env


def run(out: Path, timeout: int) -> dict:
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    result_file = out / "result.json"
    archive = packaging.build(ROOT / "dist")
    with tempfile.TemporaryDirectory(prefix="stf-qgis-profiles-") as profiles:
        prepare_profile(Path(profiles), archive)
        command = [
            "timeout", "--kill-after=15", str(timeout),
            "xvfb-run", "--auto-servernum", "--server-args=-screen 0 1600x1000x24",
            "qgis", "--profiles-path", profiles, "--profile", PROFILE,
            "--nologo", "--noversioncheck",
            "--code", str(Path(__file__).with_name("in_qgis.py")),
        ]
        with open(out / "qgis.log", "w") as log:
            completed = subprocess.run(command, env=qgis_environment(out), stdout=log, stderr=subprocess.STDOUT)
    if not result_file.exists():
        return {"ok": False, "error": f"QGIS exited with {completed.returncode} without a result (see {out / 'qgis.log'})"}
    result = json.loads(result_file.read_text())
    # 0 after File → Exit; 3: QGIS was still running a minute later (in_qgis.py ends it then); 124/137: killed at
    # the timeout; 134 or 139, with a backtrace in qgis.log: it crashed.
    result["exit_status"] = completed.returncode
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "out" / "e2e"))
    parser.add_argument("--timeout", type=int, default=300, help="seconds before QGIS is killed")
    args = parser.parse_args(argv)
    if not available():
        print("e2e: qgis or xvfb-run is not installed", file=sys.stderr)
        return 2
    result = run(Path(args.out).resolve(), args.timeout)
    print(json.dumps(result, indent=2))
    return 0 if result.get("ok") and result.get("exit_status") == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
