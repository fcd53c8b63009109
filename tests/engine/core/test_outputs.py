"""Output locks ask whether the holder runs without ever signalling it (on Windows, os.kill ends a process)."""
import os
import subprocess
import sys

import pytest

from stf_engine.core import outputs
from stf_engine.core.outputs import lock_path, output_lock
from stf_engine.errors import StfError


def test_a_lock_held_by_this_process_is_refused_without_signalling_it(tmp_path, monkeypatch):
    out = str(tmp_path / "fused.tif")
    monkeypatch.setattr(outputs.os, "kill", pytest.fail)
    with output_lock(out):
        with pytest.raises(StfError, match=f"another STF run \\(process {os.getpid()}\\) is writing"):
            with output_lock(out):
                pass


@pytest.mark.parametrize("runs", [True, False])
def test_on_windows_the_holder_is_asked_about_through_the_windows_api(tmp_path, monkeypatch, runs):
    other = subprocess.Popen([sys.executable, "-c", "pass"])
    other.wait()
    out = str(tmp_path / "fused.tif")
    with open(lock_path(out), "w") as lock:
        lock.write(f"{other.pid} token")
    asked = []
    monkeypatch.setattr(outputs.sys, "platform", "win32")
    monkeypatch.setattr(outputs.os, "kill", pytest.fail)
    monkeypatch.setattr(outputs, "_windows_process_runs", lambda pid: asked.append(pid) or runs)
    if runs:
        with pytest.raises(StfError, match=f"process {other.pid}"):
            with output_lock(out):
                pass
    else:
        with output_lock(out):  # the holder is gone: its lock is taken over
            assert open(lock_path(out)).read().startswith(str(os.getpid()))
    assert asked == [other.pid]
