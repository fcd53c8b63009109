"""Scale-out on Dask distributed (`--workers`, `--scheduler`): output bit-identical to the single-process run,
also when a worker is killed mid-run and when Python is embedded in an application (QGIS); cancel and errors as
in any run."""
from __future__ import annotations

import multiprocessing
import os
import signal
import sys
import threading

import numpy as np
import pytest
import torch

from devkit.synthetic import scene_set
from stf_engine import FusionCancelled, FusionRequest, StfError, fuse

from helpers.calls import count_calls
from helpers.clusters import loopback_cluster
from helpers.rasters import pixels

distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    return scene_set(tmp_path_factory.mktemp("dask"), height=160, width=144, bands=3, ratio=4)


@pytest.fixture(scope="module")
def cluster():
    with loopback_cluster(n_workers=2, processes=True) as local:
        yield local


@pytest.fixture
def inside_an_application(tmp_path, monkeypatch):
    """This process as Python embedded in an application (QGIS): no command line, and sys.executable, which
    multiprocessing starts, is the application (here one that fails at once)."""
    application = tmp_path / "application"
    application.write_text("#!/bin/sh\nexit 3\n")
    application.chmod(0o755)
    started_with = multiprocessing.spawn.get_executable()
    monkeypatch.setattr(sys, "orig_argv", [])
    monkeypatch.setattr(sys, "executable", str(application))
    multiprocessing.set_executable(str(application))
    yield
    multiprocessing.set_executable(started_with)


def request(scene, output, method="starfm", **kwargs):
    return FusionRequest(coarse_target=scene["coarse"], fine_reference=scene["fine"],
                         coarse_reference=scene["coarse_ref"], output=str(output), method=method, tile=32, batch=1,
                         threads=1, **kwargs)


@pytest.mark.parametrize("method", ["starfm", "fsdaf"])
def test_a_local_cluster_gives_the_single_process_output_bit_for_bit_and_listens_here_only(scene, tmp_path, method):
    """Also: its scheduler, workers and their web servers take no port on another network interface (by default
    Dask's web servers listen on every interface)."""
    psutil = pytest.importorskip("psutil")
    here, listening = psutil.Process(), []

    def look(fraction, message):
        if message.startswith("tile") and not listening:
            for process in [here, *here.children(recursive=True)]:
                try:
                    ports = process.connections(kind="inet")
                except (psutil.NoSuchProcess, psutil.AccessDenied):  # a helper process that has just ended
                    continue
                listening.extend((process.pid, c.laddr.ip) for c in ports if c.status == psutil.CONN_LISTEN)

    alone = fuse(request(scene, tmp_path / "alone.tif", method))
    spread = fuse(request(scene, tmp_path / "spread.tif", method, workers=2), look)
    assert spread.tiles == alone.tiles > 10
    np.testing.assert_array_equal(pixels(alone.output), pixels(spread.output))
    workers = {pid for pid, _ in listening if pid != here.pid}
    assert len(workers) >= 2 and {ip for _, ip in listening} <= {"127.0.0.1", "::1"}, listening


def test_local_workers_start_from_python_embedded_in_an_application(scene, tmp_path, inside_an_application):
    alone = fuse(request(scene, tmp_path / "alone.tif"))
    spread = fuse(request(scene, tmp_path / "spread.tif", workers=2))
    np.testing.assert_array_equal(pixels(alone.output), pixels(spread.output))


def test_a_worker_killed_mid_run_has_its_tiles_run_again(scene, tmp_path, cluster):
    alone = fuse(request(scene, tmp_path / "alone.tif"))
    with distributed.Client(cluster) as client:
        pids = list(client.run(os.getpid).values())
    killed = []

    def kill_one_worker(fraction, message):
        if message.startswith("tile 3/") and not killed:
            os.kill(pids[0], signal.SIGKILL)
            killed.append(pids[0])

    spread = fuse(request(scene, tmp_path / "spread.tif", scheduler=cluster.scheduler_address), kill_one_worker)
    assert killed
    np.testing.assert_array_equal(pixels(alone.output), pixels(spread.output))


def test_workers_take_the_callers_scene_survey_and_shift_instead_of_finding_them_again(scene, tmp_path,
                                                                                         monkeypatch):
    """FSDAF's scene pre-pass and the co-registration run once, in the caller; its workers (here threads of this
    process) reuse them."""
    import dataclasses

    from stf_engine.inputs import aligned
    from stf_engine.methods.catalog import METHODS

    fsdaf, surveys = METHODS["fsdaf"], []
    counted = lambda context, scene: surveys.append(1) or fsdaf.survey(context, scene)  # noqa: E731
    monkeypatch.setitem(METHODS, "fsdaf", dataclasses.replace(fsdaf, survey=counted))
    estimated = count_calls(monkeypatch, aligned, "estimate_offset")
    alone = fuse(request(scene, tmp_path / "alone.tif", "fsdaf", register=True))
    with loopback_cluster(n_workers=2, processes=False) as local:
        surveys.clear()
        estimated.clear()
        spread = fuse(request(scene, tmp_path / "spread.tif", "fsdaf", register=True,
                             scheduler=local.scheduler_address))
    assert len(surveys) == 1 and len(estimated) == 1
    np.testing.assert_array_equal(pixels(alone.output), pixels(spread.output))


def test_what_a_worker_warns_of_while_building_the_method_reaches_the_caller(scene, tmp_path, monkeypatch):
    import dataclasses

    from stf_engine.methods.catalog import METHODS

    starfm = METHODS["starfm"]

    def build(context):
        context.warn("noticed while building")
        return starfm.build(context)

    monkeypatch.setitem(METHODS, "starfm", dataclasses.replace(starfm, build=build))
    with loopback_cluster(n_workers=2, processes=False) as local:
        spread = fuse(request(scene, tmp_path / "spread.tif", scheduler=local.scheduler_address))
    assert "noticed while building" in spread.warnings


def test_cancel_stops_a_cluster_run_and_leaves_nothing(scene, tmp_path, cluster):
    cancel = threading.Event()

    def cancel_at_second_tile(fraction, message):
        if message.startswith("tile 2/"):
            cancel.set()

    with pytest.raises(FusionCancelled):
        fuse(request(scene, tmp_path / "x.tif", scheduler=cluster.scheduler_address), cancel_at_second_tile, cancel)
    assert os.listdir(tmp_path) == []


def test_an_unreachable_scheduler_and_a_bad_worker_count_are_one_line(scene, tmp_path, monkeypatch):
    from stf_engine.fusion import distributed as scale_out

    monkeypatch.setattr(scale_out, "CONNECT_SECONDS", 2)
    with pytest.raises(StfError, match="cannot reach the Dask scheduler at tcp://127.0.0.1:9"):
        fuse(request(scene, tmp_path / "x.tif", scheduler="tcp://127.0.0.1:9"))
    with pytest.raises(StfError, match="--workers must be at least 1"):
        fuse(request(scene, tmp_path / "y.tif", workers=0))
    with pytest.raises(StfError, match="not both"):
        fuse(request(scene, tmp_path / "z.tif", workers=2, scheduler="tcp://127.0.0.1:9"))
    for address in ("localhost", "nonsense", "tcp://10.0.0.5"):
        with pytest.raises(StfError, match=f"--scheduler takes a Dask scheduler's address with its port, e.g. "
                                           f"tcp://10.0.0.5:8786; got '{address}'"):
            fuse(request(scene, tmp_path / "w.tif", scheduler=address))
    assert os.listdir(tmp_path) == []


def test_workers_that_cannot_start_are_one_line_not_a_run_that_waits_forever(scene, tmp_path):
    """Dask restarts a worker that dies at start for ever; the engine tries the workers' interpreter first."""
    python = tmp_path / "python"
    python.write_text("#!/bin/sh\necho \"ModuleNotFoundError: No module named 'distributed'\" >&2\nexit 1\n")
    python.chmod(0o755)
    started_with = multiprocessing.spawn.get_executable()
    multiprocessing.set_executable(str(python))
    try:
        with pytest.raises(StfError, match=f"workers cannot start with {python} .*No module named 'distributed'"):
            fuse(request(scene, tmp_path / "out.tif", workers=2))
    finally:
        multiprocessing.set_executable(started_with)
    assert sorted(os.listdir(tmp_path)) == ["python"]
    from stf_engine.fusion.distributed import workers_can_start

    with pytest.raises(StfError, match=f"workers cannot start with {tmp_path}/missing .*No such file"):
        workers_can_start(str(tmp_path / "missing"))


def test_workers_that_die_while_starting_are_one_line_after_a_bounded_wait(scene, tmp_path, monkeypatch):
    """They pass the interpreter's trial, then die at start (here a preload that exits): Dask alone would restart
    them forever and the run would never begin."""
    import dask

    from stf_engine.fusion import distributed as scale_out

    dies = tmp_path / "dies.py"
    dies.write_text("import os\n\n\ndef dask_setup(worker):\n    os._exit(3)\n")
    monkeypatch.setattr(scale_out, "START_SECONDS", 5)
    with dask.config.set({"distributed.worker.preload": [str(dies)]}):
        with pytest.raises(StfError, match=r"local Dask worker.* (could not start \(|did not start within 5 s)"):
            fuse(request(scene, tmp_path / "out.tif", workers=2))
    assert sorted(os.listdir(tmp_path)) == ["dies.py"]


def test_a_local_cluster_whose_start_hangs_is_one_line_or_a_cancel_and_is_closed_if_it_starts_later(
        scene, tmp_path, monkeypatch):
    """Dask's start has been seen to hang past its own bound on workers that die while starting: the run gives up
    after START_SECONDS and CLOSE_SECONDS, or at once on a cancel, and closes a cluster that starts only after."""
    from stf_engine.fusion import distributed as scale_out

    release, closed = threading.Event(), []

    class Started:
        def close(self, timeout=None):
            closed.append(timeout)

    monkeypatch.setattr(scale_out, "local_cluster", lambda request, default: release.wait(60) and Started())
    monkeypatch.setattr(scale_out, "START_SECONDS", 1)
    monkeypatch.setattr(scale_out, "CLOSE_SECONDS", 1)
    with pytest.raises(StfError, match=r"^2 local Dask worker\(s\) did not start within 1 s; see the workers' log"):
        fuse(request(scene, tmp_path / "out.tif", workers=2))
    monkeypatch.setattr(scale_out, "START_SECONDS", 60)
    cancel = threading.Event()
    threading.Timer(0.5, cancel.set).start()
    with pytest.raises(FusionCancelled):
        fuse(request(scene, tmp_path / "out.tif", workers=2), cancel=cancel)
    assert closed == []
    release.set()
    for _ in range(50):
        if len(closed) == 2:
            break
        threading.Event().wait(0.1)
    assert closed == [1, 1]
    assert os.listdir(tmp_path) == []


def test_a_scheduler_without_workers_is_one_line_not_a_run_that_waits_forever(scene, tmp_path, monkeypatch):
    """Also cancelled while it waits (here the wait would last a minute, and end in an error, not a cancel)."""
    from stf_engine.fusion import distributed as scale_out

    monkeypatch.setattr(scale_out, "CONNECT_SECONDS", 2)
    with loopback_cluster(n_workers=0, processes=False) as empty:
        with pytest.raises(StfError, match=f"the Dask scheduler at {empty.scheduler_address} has no workers"):
            fuse(request(scene, tmp_path / "out.tif", scheduler=empty.scheduler_address))
        monkeypatch.setattr(scale_out, "CONNECT_SECONDS", 60)
        cancel = threading.Event()
        threading.Timer(1.0, cancel.set).start()
        with pytest.raises(FusionCancelled):
            fuse(request(scene, tmp_path / "out.tif", scheduler=empty.scheduler_address), cancel=cancel)
    assert os.listdir(tmp_path) == []


def test_the_workers_interpreter_is_tried_once_per_process_until_it_passes(monkeypatch, tmp_path):
    import subprocess

    from stf_engine.fusion import distributed as scale_out

    tried, outcome = [], {"returncode": 1}
    monkeypatch.setattr(scale_out.subprocess, "run", lambda command, **kwargs: tried.append(command[0]) or
                        subprocess.CompletedProcess(command, outcome["returncode"], "", "ImportError: no torch"))
    scale_out.workers_can_start.cache_clear()
    try:
        for _ in range(2):
            with pytest.raises(StfError, match="ImportError: no torch"):
                scale_out.workers_can_start("/opt/python")
        outcome["returncode"] = 0
        for _ in range(3):
            scale_out.workers_can_start("/opt/python")
        scale_out.workers_can_start("/opt/other-python")
    finally:
        scale_out.workers_can_start.cache_clear()
    assert tried == ["/opt/python"] * 3 + ["/opt/other-python"]


def test_a_worker_out_of_memory_halves_its_batch_like_a_run_here(scene, tmp_path, monkeypatch):
    """A method failing like CUDA on more than one tile: on (in-process) workers as here, the batch is halved with a
    warning and the output is the same."""
    import dataclasses

    from stf_engine.methods import catalog

    spec = catalog.METHODS["starfm"]

    def build(context):
        method = spec.build(context)

        def run(batch):
            if batch.valid.shape[0] > 1:
                raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")
            return method(batch)
        return run

    monkeypatch.setitem(catalog.METHODS, "starfm", dataclasses.replace(spec, build=build))
    alone = fuse(dataclasses.replace(request(scene, tmp_path / "alone.tif"), batch=2))
    with loopback_cluster(n_workers=1, processes=False) as local:
        spread = fuse(dataclasses.replace(request(scene, tmp_path / "spread.tif", scheduler=local.scheduler_address),
                                          batch=2))
    halved = [warning for warning in spread.warnings if "ran out of memory" in warning]
    assert halved and halved == [warning for warning in alone.warnings if "ran out of memory" in warning]
    np.testing.assert_array_equal(pixels(spread.output), pixels(alone.output))


def test_the_cli_runs_on_local_workers(scene, tmp_path):
    """Through `python -m stf_engine`, whose module Dask's spawned workers import again (it must not re-run)."""
    import subprocess
    import sys

    out = tmp_path / "cli.tif"
    completed = subprocess.run(
        [sys.executable, "-m", "stf_engine", "fuse", "--coarse", scene["coarse"], "--fine", scene["fine"],
         "--coarse-ref", scene["coarse_ref"], "--method", "starfm", "--tile", "32", "--batch", "1",
         "--threads", "1", "--workers", "2", "--out", str(out)],
        capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr[-2000:]
    alone = fuse(request(scene, tmp_path / "alone.tif"))
    np.testing.assert_array_equal(pixels(alone.output), pixels(out))


class Recorded:
    """A cluster class that only records how it was made."""

    made = []

    def __init__(self, **kwargs):
        Recorded.made.append((type(self).__name__, kwargs))


class LocalCUDACluster(Recorded):
    pass


@pytest.mark.parametrize("installed, device, expected", [
    (True, "auto", ("LocalCUDACluster", 2)),
    (True, "cpu", ("Recorded", 4)),
    (False, "auto", ("Recorded", 4)),
])
def test_local_workers_take_one_gpu_each_with_dask_cuda(monkeypatch, installed, device, expected):
    from types import SimpleNamespace

    from stf_engine.fusion import distributed as scale_out
    from stf_engine.fusion.distributed import local_cluster

    monkeypatch.setattr(scale_out, "workers_can_start", lambda python: None)

    monkeypatch.setitem(sys.modules, "dask_cuda",
                        SimpleNamespace(LocalCUDACluster=LocalCUDACluster) if installed else None)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    Recorded.made.clear()
    local_cluster(FusionRequest("c2.tif", "f1.tif", output="x.tif", workers=4, device=device), Recorded)
    [(kind, kwargs)] = Recorded.made
    assert (kind, kwargs["n_workers"]) == expected and kwargs["threads_per_worker"] == 1
    assert kwargs["death_timeout"] == scale_out.START_SECONDS  # a worker that dies at start is given up


@pytest.mark.parametrize("platform, interpreter", [
    ("linux", f"bin/python{sys.version_info[0]}.{sys.version_info[1]}"), ("win32", "pythonw.exe"),
])
def test_embedded_python_starts_local_workers_with_its_installations_interpreter(monkeypatch, tmp_path, platform,
                                                                               interpreter):
    """Inside an application, sys.exec_prefix's interpreter; in a Python program, its own sys.executable."""
    from stf_engine.fusion import distributed as scale_out
    from stf_engine.fusion.distributed import local_cluster

    python = tmp_path / interpreter
    python.parent.mkdir(exist_ok=True)
    python.touch()
    started_with, tried = [], []
    monkeypatch.setattr(multiprocessing, "set_executable", started_with.append)
    monkeypatch.setattr(scale_out, "workers_can_start", tried.append)
    monkeypatch.setattr(sys, "exec_prefix", str(tmp_path))
    monkeypatch.setattr(sys, "platform", platform)
    workers = FusionRequest("c2.tif", "f1.tif", output="x.tif", workers=2, device="cpu")
    for command_line in (["python", "-m", "stf_engine"], []):
        monkeypatch.setattr(sys, "orig_argv", command_line)
        local_cluster(workers, Recorded)
    assert started_with == [str(python)]
    assert len(tried) == 2
    python.unlink()
    with pytest.raises(StfError, match="interpreter, not found at .*give its scheduler's address"):
        local_cluster(workers, Recorded)


@pytest.mark.parametrize("executable, expected", [
    ("/usr/bin/qgis", True), ("C:/OSGeo4W/bin/qgis-bin.exe", True), ("/usr/bin/python3.9", False),
    ("C:/Python39/python.exe", False),
])
def test_before_python_3_10_an_executable_not_named_python_means_embedded(monkeypatch, executable, expected):
    from stf_engine.fusion.distributed import embedded

    monkeypatch.delattr(sys, "orig_argv", raising=False)
    monkeypatch.setattr(sys, "executable", executable)
    assert embedded() is expected
