"""Choosing the torch device (and autocast) a run uses."""
from __future__ import annotations

import contextlib
import functools
import os
import threading
from typing import Iterator, Optional

import torch

from ..errors import StfError

MINIMUM_TORCH = (2, 3)
"""The oldest PyTorch the engine runs on: training uses torch.amp.GradScaler(device), new in 2.3 (it is tested with
2.13). Debian 12's own python3-torch is 1.13."""


def _torch_release(version: str) -> tuple:
    """(major, minor) of a PyTorch version string such as '2.13.0+cpu'."""
    return tuple(int(part) for part in version.split("+")[0].split(".")[:2] if part.isdigit())


if _torch_release(torch.__version__) < MINIMUM_TORCH:  # refused at import: the first call would fail deep inside
    raise ImportError(f"PyTorch {torch.__version__} is too old for STF, which needs PyTorch "
                      f"{'.'.join(map(str, MINIMUM_TORCH))} or later", name="torch")

DEVICES = ("auto", "cpu", "cuda")
"""Device names a request may give: auto takes CUDA when usable, else the CPU."""
PRECISIONS = ("fp32", "fp16", "bf16")
"""fp32, or fp16/bf16 autocast (CUDA only)."""


def resolve_device(name: str = "auto") -> torch.device:
    """'auto' takes CUDA when a GPU is usable, the CPU otherwise; 'cuda' without a GPU is an error."""
    name = (name or "auto").lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise StfError("device 'cuda' was asked for but no CUDA GPU is available; use --device auto or cpu")
    if name not in ("cpu",) and not name.startswith("cuda"):
        raise StfError(f"unknown device '{name}'; use auto, cpu or cuda")
    return torch.device(name)


def devices_found() -> list:
    """Human-readable list of the devices this machine offers."""
    found = [f"cpu ({torch.get_num_threads()} threads)"]
    for index in range(torch.cuda.device_count() if torch.cuda.is_available() else 0):
        found.append(f"cuda:{index} ({torch.cuda.get_device_name(index)})")
    return found


def autocast(device: torch.device, precision: str):
    """fp16/bf16 autocast on CUDA; a no-op for fp32 and on the CPU."""
    dtypes = {"fp16": torch.float16, "bf16": torch.bfloat16}
    if precision not in PRECISIONS:
        raise StfError(f"unknown precision '{precision}'; use fp32, fp16 or bf16")
    if device.type != "cuda" or precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast("cuda", dtype=dtypes[precision])


class _Autotuning:
    """How many runs use cuDNN's autotuner now, and the setting to restore when the last one ends."""

    lock = threading.Lock()
    users = 0
    before = False


@contextlib.contextmanager
def cudnn_autotuned(device: torch.device) -> Iterator[None]:
    """cuDNN's autotuner on for what runs inside, on a GPU (a run's tiles share one shape, so its search pays off),
    and as it was once the last overlapping run ends: QGIS plugins share one interpreter, and another torch user's
    setting stays theirs."""
    if device.type != "cuda":
        yield
        return
    with _Autotuning.lock:
        if not _Autotuning.users:
            _Autotuning.before, torch.backends.cudnn.benchmark = torch.backends.cudnn.benchmark, True
        _Autotuning.users += 1
    try:
        yield
    finally:
        with _Autotuning.lock:
            _Autotuning.users -= 1
            if not _Autotuning.users:
                torch.backends.cudnn.benchmark = _Autotuning.before


@functools.lru_cache(maxsize=None)
def physical_cores() -> int:
    """CPU cores without their hyper-threads: from /proc/cpuinfo on Linux, else from psutil where it is installed
    (QGIS ships it on Windows and macOS; STF does not require it), else every logical CPU."""
    return _cores_in_cpuinfo() or _cores_from_psutil() or os.cpu_count() or 1


def _cores_in_cpuinfo() -> Optional[int]:
    try:
        with open("/proc/cpuinfo") as info:
            cores, physical = set(), "0"
            for line in info:
                key, _, value = (part.strip() for part in line.partition(":"))
                if key == "physical id":
                    physical = value
                elif key == "core id":
                    cores.add((physical, value))
    except OSError:
        return None
    return len(cores) or None


def _cores_from_psutil() -> Optional[int]:
    try:
        import psutil
    except ImportError:
        return None
    return psutil.cpu_count(logical=False)


def run_threads() -> int:
    """The CPU threads of the run in progress (what `cpu_threads` set), for work beside torch's (compression)."""
    return torch.get_num_threads()


@contextlib.contextmanager
def cpu_threads(count: Optional[int]) -> Iterator[int]:
    """torch's CPU threads set to `count` (default: the physical cores) for a run, restored afterwards.

    More threads than physical cores make the CPU paths much slower on a busy machine, not faster.
    """
    if count is not None and count < 1:
        raise StfError(f"threads must be at least 1, got {count}")
    wanted = count or physical_cores()
    before = torch.get_num_threads()
    torch.set_num_threads(wanted)
    try:
        yield wanted
    finally:
        torch.set_num_threads(before)
