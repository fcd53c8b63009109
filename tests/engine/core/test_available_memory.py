"""The memory check knows what is available on Windows too, which has neither /proc nor os.sysconf: without it the
check was silently skipped there."""
import ctypes
from types import SimpleNamespace

from stf_engine.core import memory


def test_on_windows_the_available_memory_comes_from_global_memory_status(monkeypatch):
    asked = []

    def global_memory_status(reference):
        status = reference._obj
        asked.append(status.dwLength)
        status.ullTotalPhys, status.ullAvailPhys = 16 << 30, 5 << 30
        return 1

    monkeypatch.setattr(memory, "ON_WINDOWS", True)
    monkeypatch.setattr(ctypes, "windll", SimpleNamespace(kernel32=SimpleNamespace(
        GlobalMemoryStatusEx=global_memory_status)), raising=False)
    assert memory.available_bytes() == 5 << 30
    assert asked == [64], "MEMORYSTATUSEX is 64 bytes: dwLength tells Windows which structure it fills"


def test_on_linux_it_is_what_the_kernel_calls_available():
    with open("/proc/meminfo") as info:
        kernel = next(int(line.split()[1]) * 1024 for line in info if line.startswith("MemAvailable:"))
    assert abs(memory.available_bytes() - kernel) < 2 << 30
