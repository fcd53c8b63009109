"""How much memory a run may take: what the machine has available now."""
from __future__ import annotations

import os
import sys
from typing import Optional

ON_WINDOWS = sys.platform == "win32"
"""Where neither /proc nor os.sysconf tells the memory: the Windows API does."""


def available_bytes() -> Optional[int]:
    """The memory available now: MemAvailable from /proc/meminfo (Linux), the available physical memory (Windows),
    else the physical memory; None when unknown."""
    if ON_WINDOWS:
        return _windows_available()
    try:
        with open("/proc/meminfo") as info:
            for line in info:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def _windows_available() -> Optional[int]:
    """ullAvailPhys of GlobalMemoryStatusEx; None when the call fails."""
    import ctypes

    class MemoryStatus(ctypes.Structure):
        _fields_ = [("dwLength", ctypes.c_uint32), ("dwMemoryLoad", ctypes.c_uint32),  # DWORDs
                    *((name, ctypes.c_ulonglong) for name in (
                        "ullTotalPhys", "ullAvailPhys", "ullTotalPageFile", "ullAvailPageFile", "ullTotalVirtual",
                        "ullAvailVirtual", "ullAvailExtendedVirtual"))]

    status = MemoryStatus()
    status.dwLength = ctypes.sizeof(MemoryStatus)
    if not ctypes.windll.kernel32.GlobalMemoryStatusEx(ctypes.byref(status)):
        return None
    return int(status.ullAvailPhys)
