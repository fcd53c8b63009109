"""The `stf` console script as pip installs it: Ctrl-C in its first seconds, while `import torch` runs, exits 130
with one line and no traceback; a PyTorch or rasterio that is missing or too old is one `error:` line too."""
import os
import re
import subprocess
import sys

from helpers.paths import ROOT

CONSOLE_SCRIPT = """
import sys

class InterruptTorchImport:
    '''Ctrl-C at a fixed point of the start-up: when the engine first imports torch.'''

    def find_spec(self, name, path=None, target=None):
        if name == "torch":
            raise KeyboardInterrupt
        return None

if {interrupt}:
    sys.meta_path.insert(0, InterruptTorchImport())
for missing in {missing}:  # as in a Python where that module is not installed
    sys.modules[missing] = None
if {torch_version!r}:
    import torch
    torch.__version__ = {torch_version!r}
if {windows_signals}:  # the signal module as Windows has it: no SIGPIPE, no SIGHUP, a SIGBREAK
    import signal
    del signal.SIGPIPE, signal.SIGHUP
    signal.SIGBREAK = signal.SIGUSR1
sys.argv = ["stf", "info"]
from {module} import {function}  # what pip's generated `stf` script runs
sys.exit({function}())
"""


def run_console_script(interrupt: bool, windows_signals: bool = False, missing=(), torch_version: str = ""
                       ) -> subprocess.CompletedProcess:
    """The entry point pyproject.toml names for `stf`, started as its installed script starts it; `missing` modules
    cannot be imported, and torch says it is `torch_version`."""
    module, function = re.search(r'^stf = "([\w.]+):(\w+)"', (ROOT / "pyproject.toml").read_text(), re.M).groups()
    script = CONSOLE_SCRIPT.format(interrupt=interrupt, windows_signals=windows_signals, module=module,
                                   function=function, missing=list(missing), torch_version=torch_version)
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)


def test_ctrl_c_while_the_engine_imports_is_one_line_and_exit_130():
    completed = run_console_script(interrupt=True)
    assert completed.returncode == 130, completed.stderr
    assert completed.stderr == "error: interrupted\n"


def test_the_console_script_runs_stf():
    completed = run_console_script(interrupt=False)
    assert completed.returncode == 0, completed.stderr
    assert "devices: cpu" in completed.stdout


def test_the_console_script_runs_where_the_system_has_no_sigpipe_or_sighup():
    completed = run_console_script(interrupt=False, windows_signals=True)
    assert completed.returncode == 0, completed.stderr
    assert "devices: cpu" in completed.stdout


def test_a_report_redirected_into_a_code_page_without_its_characters_is_written_with_escapes():
    """Windows encodes a redirected standard output in its ANSI code page (cp1252 has no '−' or '←'): the command
    failed as 'a bug' after its work was done."""
    completed = subprocess.run([sys.executable, "-m", "stf_engine", "info"], capture_output=True, timeout=120,
                               env={**os.environ, "PYTHONIOENCODING": "cp1252"})
    assert completed.returncode == 0, completed.stderr.decode()
    assert b"\\u2212" in completed.stdout and b"devices: cpu" in completed.stdout


def test_a_python_without_torch_is_told_to_install_it_in_one_line():
    completed = run_console_script(interrupt=False, missing=["torch"])
    assert completed.returncode == 2
    assert completed.stderr.splitlines() == [
        f"error: PyTorch (torch) is not installed in this Python ({sys.executable}); install it, e.g. "
        f"{sys.executable} -m pip install torch --index-url https://download.pytorch.org/whl/cpu"]


def test_a_torch_too_old_for_the_engine_is_refused_as_it_imports():
    """Debian 12's python3-torch is 1.13: training's torch.amp.GradScaler(device) is 2.3's."""
    completed = run_console_script(interrupt=False, torch_version="1.13.1")
    assert completed.returncode == 2
    assert completed.stderr.splitlines() == [
        "error: PyTorch 1.13.1 is too old for STF, which needs PyTorch 2.3 or later: upgrade it in this Python "
        f"({sys.executable} -m pip install --upgrade torch)"]
    assert run_console_script(interrupt=False, torch_version="2.3.0+cpu").returncode == 0


def test_a_missing_rasterio_is_named_with_its_debian_package():
    completed = run_console_script(interrupt=False, missing=["rasterio"])
    assert completed.returncode == 2
    assert completed.stderr.splitlines() == [
        f"error: the Python module 'rasterio' the engine needs is not installed in this Python ({sys.executable}); "
        "install it (on Debian or Ubuntu, the package python3-rasterio)"]
