"""How much memory a run may take: what the machine has available now."""
from __future__ import annotations

import os
from typing import Optional


def available_bytes() -> Optional[int]:
    """MemAvailable from /proc/meminfo (Linux), else the physical memory, else None when unknown."""
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
