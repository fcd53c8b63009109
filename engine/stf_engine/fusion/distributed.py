"""Scale-out on Dask distributed: batches of tiles (with their halo) as tasks, one writer in the caller.

`--workers N` starts a local cluster of N worker processes; `--scheduler ADDRESS` uses a running one (its
workers must see the input files at the same paths). Each worker opens the inputs and builds the method
once per run (one model load per worker) from the caller's scene survey, sent once to every worker, and
predicts the batches it is given; results come back in tile order and the caller writes them, so the output is
the single-process run's, bit for bit, when each worker uses as many CPU threads as that run did. A worker that
dies has its batches re-run on another.
Local workers start with this installation's Python interpreter, also from an application that embeds Python
(QGIS), where `sys.executable` is not it; that interpreter is tried once first, because Dask waits forever on a
worker that cannot start. A worker that passes that trial and still dies while starting, or a scheduler with no
workers, is refused after a bounded wait instead of a run that never begins. Dask is optional: without
`distributed` installed, only these options are refused.
"""
from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import functools
import math
import multiprocessing.spawn
import os
import secrets
import subprocess
import sys
import threading
import time
from contextlib import ExitStack
from typing import Dict, Iterator, Mapping, Optional, Tuple

import numpy as np
import torch

from ..core import tiling
from ..core.device import cpu_threads
from ..core.progress import Cancel, check_cancel
from ..errors import StfError
from .check import Plan, prepare
from .predict import Predicted, predict_tiles
from .request import FusionRequest

POLL_SECONDS = 0.5
"""How often the caller looks at its cancel while it waits for a batch."""
CONNECT_SECONDS = 20
"""How long reaching a scheduler, and finding a worker on it, may take."""
TRY_SECONDS = 120
"""How long the trial start of the workers' interpreter may take (it imports torch)."""
START_SECONDS = 120
"""How long local workers may take to start in all: the trial, their start (each imports torch) and joining."""
CLOSE_SECONDS = 30
"""How long closing a local cluster may take."""
LOOPBACK = "127.0.0.1:0"
"""Where the web servers of a local cluster's scheduler and workers listen: this machine only, on free ports.
Dask's own default, also with their dashboards off, is every network interface (the scheduler's at port 8787)."""

_TIMEOUTS = (TimeoutError, concurrent.futures.TimeoutError)
"""What a wait that ran out raises (before Python 3.11 concurrent.futures' is not the built-in one)."""

_RUNS: Dict[str, Tuple[ExitStack, object, object]] = {}
"""On a worker: per run, its open inputs (the stack), its plan and its method."""


def wanted(request) -> bool:
    """Whether a request (a fusion or a series) asks for Dask workers or a scheduler."""
    return bool(request.workers or request.scheduler)


@contextlib.contextmanager
def cluster(request, cancel: Optional[Cancel] = None) -> Iterator[object]:
    """A Dask client: on a new local cluster of `request.workers` processes, or on `request.scheduler`; the
    waits for their workers look at `cancel`."""
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise StfError("--workers/--scheduler need Dask distributed; install python3-distributed "
                       "(Debian) or `pip install distributed`") from None
    if request.scheduler:
        try:
            client = Client(request.scheduler, timeout=CONNECT_SECONDS)
        except (OSError, TimeoutError) as exc:
            raise StfError(f"cannot reach the Dask scheduler at {request.scheduler} ({exc}); check the address "
                           f"and that the scheduler is running") from None
        with client:
            _wait_for_workers(client, 1, time.monotonic() + CONNECT_SECONDS, cancel,
                              f"the Dask scheduler at {request.scheduler} has no workers; start one with "
                              f"`dask worker {request.scheduler}` on a machine that sees the input files")
            yield client
        return
    deadline = time.monotonic() + START_SECONDS  # the trial, the start and the workers joining, all together
    # Dask ends a start whose workers die by itself after START_SECONDS (their death_timeout), closing them
    local = _started_within(lambda: local_cluster(request, LocalCluster), deadline + CLOSE_SECONDS, cancel,
                            _late(request.workers))
    try:
        with Client(local) as client:
            count = len(local.worker_spec)
            _wait_for_workers(client, count, deadline, cancel, _late(count))
            yield client
    finally:
        _close(local)


_YOURSELF = "start a Dask cluster yourself and give its scheduler's address instead"
_INSTEAD = f"see the workers' log above, or {_YOURSELF}"


def _late(count: int) -> str:
    return f"{count} local Dask worker(s) did not start within {START_SECONDS} s; {_INSTEAD}"


def _started_within(start, deadline: float, cancel: Optional[Cancel], problem: str):
    """What `start()` (a local cluster's construction) returns, run in a thread of its own and awaited until
    `deadline` while looking at `cancel`: Dask's start has been seen to hang, past its own bound, on workers that
    die while starting. A cluster that starts only after the caller gave up is closed then."""
    started: concurrent.futures.Future = concurrent.futures.Future()

    def run() -> None:
        try:
            started.set_result(start())
        except BaseException as exc:  # handed to the caller, who raises it
            started.set_exception(exc)

    threading.Thread(target=run, name="stf-dask-start", daemon=True).start()  # daemon: a hung start never holds exit
    try:
        return _poll(lambda seconds: started.result(timeout=seconds), cancel, deadline)
    except BaseException as exc:
        started.add_done_callback(lambda done: done.exception() is None and _close(done.result()))
        if isinstance(exc, _TIMEOUTS):
            raise StfError(problem) from None
        raise


def _close(local) -> None:
    """Close a local cluster within CLOSE_SECONDS: one whose workers keep dying may not close at all, and its
    worker processes end with this process."""
    with contextlib.suppress(Exception):
        local.close(timeout=CLOSE_SECONDS)


def _wait_for_workers(client, count: int, deadline: float, cancel: Optional[Cancel], problem: str) -> None:
    """Return once `count` workers are connected; `problem` as the error when they are not by `deadline`
    (time.monotonic(); the run would otherwise wait for them forever)."""
    from distributed import TimeoutError as DaskTimeout

    try:
        _poll(lambda seconds: client.wait_for_workers(count, timeout=seconds), cancel, deadline)
    except (DaskTimeout, TimeoutError):
        raise StfError(problem) from None


def local_cluster(request, default):
    """One worker per GPU with `dask-cuda`'s LocalCUDACluster when it is installed and the run may use the
    GPUs (each worker then sees only its own GPU); otherwise `default`, a cluster of CPU worker processes."""
    if embedded():
        multiprocessing.set_executable(installed_python())
    workers_can_start(os.fsdecode(multiprocessing.spawn.get_executable()))
    make, options = default, dict(n_workers=request.workers, processes=True)
    if request.device != "cpu" and torch.cuda.is_available():
        try:
            from dask_cuda import LocalCUDACluster
        except ImportError:
            pass
        else:
            make, options = LocalCUDACluster, dict(n_workers=min(request.workers, torch.cuda.device_count()))
    try:  # death_timeout: Dask gives up on a worker not started by then instead of restarting it forever
        return make(threads_per_worker=1, dashboard_address=LOOPBACK, worker_dashboard_address=LOOPBACK,
                    scheduler_kwargs={"dashboard": False}, death_timeout=START_SECONDS, **options)
    except Exception as exc:  # what Dask raises then varies (a timeout, an assertion on a nanny's state)
        detail = f"{type(exc).__name__}: {exc}".rstrip(": ")
        raise StfError(f"local Dask workers could not start ({detail}); {_INSTEAD}") from None


def embedded() -> bool:
    """Whether Python runs inside an application (QGIS), not as a program of its own (which has a command line)."""
    if hasattr(sys, "orig_argv"):
        return not sys.orig_argv
    return not os.path.basename(sys.executable).lower().startswith("python")  # before 3.10: no sys.orig_argv


def installed_python() -> str:
    """This installation's interpreter, for worker processes started from an application embedding Python, whose
    `sys.executable` (what multiprocessing starts) is the application itself or the first python3 on PATH."""
    version = f"{sys.version_info[0]}.{sys.version_info[1]}"
    name = "pythonw.exe" if sys.platform == "win32" else os.path.join("bin", f"python{version}")
    path = os.path.join(sys.exec_prefix, name)
    if not os.path.isfile(path):
        raise StfError(f"local Dask workers need Python {version}'s interpreter, not found at {path}; "
                       f"{_YOURSELF}")
    return path


@functools.lru_cache(maxsize=None)  # a success holds for the process (a series may start a cluster per date)
def workers_can_start(python: str) -> None:
    """Start `python` once as a worker would (this process's module path, importing Dask and this module), so
    a worker that cannot start is an error now: Dask would restart it forever and the run would never begin.
    A failure is not remembered: it is tried again next time."""
    trial = f"import sys; assert sys.version_info[:2] == {tuple(sys.version_info[:2])}; import distributed, {__name__}"
    environment = dict(os.environ, PYTHONPATH=os.pathsep.join(path for path in sys.path if path))
    try:
        done = subprocess.run([python, "-c", trial], env=environment, capture_output=True, text=True,
                              timeout=TRY_SECONDS)
    except (OSError, subprocess.TimeoutExpired) as exc:
        problem = str(exc)
    else:
        if done.returncode == 0:
            return
        problem = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
    raise StfError(f"local Dask workers cannot start with {python} ({problem}); {_YOURSELF}")


def predict_on_cluster(client, plan: Plan, cancel: Optional[Cancel]) -> Iterator[Predicted]:
    """Like `predict_tiles` for the plan's tiles, with each batch of tiles a task on the cluster; batches come back
    in order. What the plan found (the scene survey, the co-registration shift) is sent to every worker once, so no
    worker surveys or registers again."""
    run, halo = secrets.token_hex(8), plan.halo
    request = dataclasses.replace(plan.request, coarse_shift=plan.inputs.coarse_shift)
    groups = list(tiling.batches(plan.tiles, request.batch))
    (shared,) = client.scatter([_on_cpu(plan.context.survey)], broadcast=True, hash=False)  # in a list: a dict is split
    futures = [client.submit(_predict_group, run, request, shared, tuple(group), halo, pure=False)
               for group in groups]
    try:
        for group, future in zip(groups, futures):
            values, valid, warned = wait_for(future, cancel)
            plan.warnings.extend_unique(warned)  # what a worker noticed building the method reaches the caller
            yield group, torch.from_numpy(values), torch.from_numpy(valid)
    finally:
        client.cancel(futures)
        with contextlib.suppress(Exception):  # a worker gone by now has nothing left to close
            client.run(_forget, run)


def _on_cpu(value):
    """A survey's tensors (in nested mappings too) in host memory: a worker may have no GPU, or another one."""
    if isinstance(value, torch.Tensor):
        return value.cpu()
    if isinstance(value, Mapping):
        return {key: _on_cpu(item) for key, item in value.items()}
    return value


def wait_for(future, cancel: Optional[Cancel]):
    """The future's result, looking at `cancel` every POLL_SECONDS while it runs."""
    return _poll(lambda seconds: future.result(timeout=seconds), cancel)


def _poll(step, cancel: Optional[Cancel], deadline: float = math.inf):
    """What `step(timeout)` returns once it does not time out, called with at most POLL_SECONDS so `cancel` is
    looked at in between; its timeout is raised once `deadline` (time.monotonic()) has passed."""
    from distributed import TimeoutError as DaskTimeout

    while True:
        check_cancel(cancel)
        try:
            return step(max(0.1, min(POLL_SECONDS, deadline - time.monotonic())))
        except (DaskTimeout, *_TIMEOUTS):
            if time.monotonic() >= deadline:
                raise


def _predict_group(run: str, request: FusionRequest, survey: Mapping[str, object], group: Tuple[tiling.Tile, ...],
                   halo: int):
    """On a worker: this run's inputs and method (built on first use, from the caller's survey), then one batch
    of tiles: (values, valid, the worker plan's warnings)."""
    if run not in _RUNS:
        stack = ExitStack()
        plan = prepare(request, stack, survey_scene=False)
        plan.context = dataclasses.replace(plan.context, survey=survey)
        _RUNS[run] = (stack, plan, plan.spec.build(plan.context))
    _, plan, method = _RUNS[run]
    with cpu_threads(request.threads):
        parts = list(predict_tiles(plan.inputs, method, group, halo, len(group), plan.device, request.precision,
                                   **plan.fallbacks()))  # more than one when memory ran out and the batch was halved
    values, valid = (torch.cat([part[index].cpu() for part in parts]).numpy() for index in (1, 2))
    return values, valid.astype(np.bool_), tuple(plan.warnings)


def _forget(run: str) -> None:
    """On a worker: close the run's inputs."""
    entry = _RUNS.pop(run, None)
    if entry is not None:
        entry[0].close()
