"""The `stf` console script as pip installs it: Ctrl-C in its first seconds, while `import torch` runs, exits 130
with one line and no traceback."""
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
if {windows_signals}:  # the signal module as Windows has it: no SIGPIPE, no SIGHUP, a SIGBREAK
    import signal
    del signal.SIGPIPE, signal.SIGHUP
    signal.SIGBREAK = signal.SIGUSR1
sys.argv = ["stf", "info"]
from {module} import {function}  # what pip's generated `stf` script runs
sys.exit({function}())
"""


def run_console_script(interrupt: bool, windows_signals: bool = False) -> subprocess.CompletedProcess:
    """The entry point pyproject.toml names for `stf`, started as its installed script starts it."""
    module, function = re.search(r'^stf = "([\w.]+):(\w+)"', (ROOT / "pyproject.toml").read_text(), re.M).groups()
    script = CONSOLE_SCRIPT.format(interrupt=interrupt, windows_signals=windows_signals, module=module,
                                   function=function)
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
