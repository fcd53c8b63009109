"""`fuse_series`: a fused image and a reliability map for every coarse date of a series, in phases.

list the dates and their references → align and restore the coarse images → restore the references
(once, shared by every date) → cross-validate the references → per date: fuse with the chosen method,
then fallback and reliability (`finish`) → series.json after every date, series.vrt at the end.
A date's two files appear together when it is done, so an interrupted run loses at most the date in
progress, and a re-run resumes after the dates already written (unless `overwrite`).
"""
from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
import time
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from typing import Dict, Iterator, List, Optional, Tuple

import rasterio

from .. import roles
from ..core.device import cpu_threads
from ..core.outputs import check_writable_folder, made_folder, output_lock, refuse_overwrite, remove_output
from ..core.progress import Cancel, Progress, Warnings, check_cancel, log, reporter, silent, stage
from ..errors import StfError
from ..fusion.request import FusionRequest, FusionResult, check_cluster
from ..fusion import distributed
from ..fusion.run import GDAL_CACHE_BYTES, batches_dates, fuse, fuse_dates, shared_by_dates
from ..fusion.surveys import ReferenceSurveys
from ..inputs.aligned import is_units_warning
from ..inputs.series_list import Dated, list_series, series_files
from ..methods.catalog import get_method, resolved_options
from .finish import OUTPUT_KINDS, finish_date, is_date_output, output_names
from .folder import STOPPED_OVERWRITE, date_inputs, kept_dates, read_earlier
from .manifest import MANIFEST, STACK, write_manifest, write_stack
from .plan import MIN_CLEAR, PlannedDate, plan_entries
from .request import OUTDATED, DateResult, KeptDates, SeriesRequest, SeriesResult
from .restore import Restored, coarse_name, restore_coarse, restore_references
from .scene import SeriesScene
from .validate import ErrorModel, error_model
from .work import WORK_PREFIX, WorkRasters, remove_left_work

PREPARATION_SHARE = 0.15
"""Share of the progress bar for aligning and restoring, before the first date is fused."""
FINISH_SHARE = 0.2
"""Share of each date's progress for its fallback and reliability pass."""


def fuse_series(request: SeriesRequest, progress: Optional[Progress] = None,
                cancel: Optional[Cancel] = None) -> SeriesResult:
    """Fuse every requested date of the series into `request.output_dir`; see the module doc."""
    started = time.perf_counter()
    report = reporter(progress, cancel)
    get_method(request.method)  # an unknown method or a bad cluster option is refused before any work
    check_cluster(request)
    warnings = Warnings()
    entries = list_series(request.series, pairs_only=False, warnings=warnings)
    planned = plan_entries(entries, request)
    if not request.output_dir:
        raise StfError("no output folder given; name the folder to write the fused dates into")
    out = os.path.abspath(request.output_dir)
    check_writable_folder(out, "series output")
    written = {f"{kind} image of {p.date}": path for p in planned
               for kind, path in zip(OUTPUT_KINDS, output_names(out, p.date))}
    refuse_overwrite({**written, "manifest": os.path.join(out, MANIFEST), "stack": os.path.join(out, STACK)},
                     {"series list": request.series, **series_files(entries)})
    earlier = read_earlier(out)
    settings = _settings(request)
    inputs = date_inputs(planned, entries)
    kept, said = kept_dates(out, earlier, planned, settings, inputs, request.overwrite)
    todo = [p for p in planned if p.date not in kept]
    results: Dict[str, DateResult] = dict(kept)
    asked = {p.date for p in planned}
    # series.json describes every date in the folder: its other dates, and the requested ones until fused again
    folder = {date: replace(result, status=OUTDATED, note=STOPPED_OVERWRITE) if date in asked else result
              for date, result in earlier.dates.items() if date not in kept}
    found = earlier.found if earlier.settings == settings else {}
    warnings.extend_unique(said)
    with made_folder(out), _kept_when_stopped(out, planned, results, request.overwrite), \
            rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_BYTES), ExitStack() as stack:
        stack.enter_context(output_lock(os.path.join(out, MANIFEST)))
        remove_left_work(out, is_date_output)
        stack.enter_context(cpu_threads(request.threads))
        model = None
        if any(p.usable for p in todo):
            scene = SeriesScene(entries, request, stack)
            warnings.extend_unique(scene.warnings)
            work = WorkRasters(stack.enter_context(tempfile.TemporaryDirectory(prefix=WORK_PREFIX, dir=out)),
                               scene.grid, stack, scene.open_limit)
            references, model, todo = _prepare(scene, work, request, todo, stage(report, 0.0, PREPARATION_SHARE),
                                               cancel)
            warnings.extend_unique(scene.warnings)  # and what reading the masks found
            found = _found(scene, model)
        for date in (d for d in todo if not d.usable):
            note = (f"no other fine image within {request.max_gap} days (its own is no reference for it)"
                    if date.has_fine else f"no usable fine reference within {request.max_gap} days")
            results[date.date] = DateResult(date.date, "skipped", note=note, inputs=inputs[date.date])
            _remove_outputs(out, date.date)  # fused by an earlier run (--overwrite): the folder holds one fusion
            warnings.add(f"{date.date}: skipped, {note}")
        usable = [d for d in todo if d.usable]
        dates = stage(report, PREPARATION_SHARE, 1.0)
        if usable and distributed.wanted(request):
            dates(0.0, "starting the Dask workers" if request.workers else "connecting to Dask")
            client = stack.enter_context(distributed.cluster(request, cancel))
            done = _on_cluster(client, request, scene, usable, references, model, out, work.folder, dates, cancel)
        elif usable:
            done = _here(scene, work, request, usable, references, model, out, dates, cancel)
        else:
            done = iter(())
        manifest = None
        for result, date_warnings in done:  # series.json after every date: a stopped run keeps what it finished
            results[result.date] = replace(result, inputs=inputs[result.date])
            warnings.extend_unique(date_warnings)
            manifest = write_manifest(out, {**folder, **results}.values(), _facts(request, found))
        if manifest is None:  # no date fused in this run: the kept and skipped ones
            manifest = write_manifest(out, {**folder, **results}.values(), _facts(request, found))
        stack_path = write_stack(out, {**folder, **results}.values())
    report(1.0, "done")
    return SeriesResult(out, tuple(results[p.date] for p in planned), manifest, stack_path,
                        model.pairs if model else (), time.perf_counter() - started, tuple(warnings),
                        tuple(found.get("coarse_shift_px", (0.0, 0.0))))


@contextmanager
def _kept_when_stopped(out: str, planned: List[PlannedDate], results: Dict[str, DateResult],
                       overwrite: bool) -> Iterator[None]:
    """The run's block; an exception leaving it (after its cleanup: enter this first) carries the dates finished
    in `out` by then as `left_behind` (`KeptDates`), so the front end does not say that nothing was left."""
    try:
        yield
    except BaseException as stop:
        finished = tuple(p.date for p in planned if p.date in results and results[p.date].status != "skipped")
        if finished:
            unfinished = tuple(p.date for p in planned if p.date not in results)
            stop.left_behind = KeptDates(out, finished, unfinished, overwrite)
        raise


def _here(scene: SeriesScene, work: WorkRasters, request: SeriesRequest, dates: List[PlannedDate],
          references: Dict[str, Restored], model: ErrorModel, out: str, progress: Progress,
          cancel: Optional[Cancel]) -> Iterator[Tuple[DateResult, List[str]]]:
    """The dates in this process: groups of up to `dates_per_batch()` consecutive dates with the same references
    when the method allows (`fuse_dates`: one method call a batch for all of them), else one by one; each
    then finished on its own. The reference surveys (FSDAF's classes) are shared by every date."""
    surveys = ReferenceSurveys()
    done = 0
    for group in _groups([_fusion_request(scene, work, request, d, references) for d in dates],
                         request.dates_per_batch()):
        check_cancel(cancel)
        label = group[0].date.date if len(group) == 1 else f"{group[0].date.date} … {group[-1].date.date}"
        share = stage(progress, done / len(dates), (done + len(group)) / len(dates), label)
        with _fusion_unlogged(label):
            fused = fuse_dates([g.fusion for g in group], stage(share, 0.0, 1 - FINISH_SHARE), cancel, surveys)
        for index, (planned, result) in enumerate(zip(group, fused)):
            finishing = stage(share, 1 - FINISH_SHARE + FINISH_SHARE * index / len(group),
                              1 - FINISH_SHARE + FINISH_SHARE * (index + 1) / len(group),
                              planned.date.date if len(group) > 1 else "")  # which date of the group
            yield _finish(scene, work, planned, result, model, out, finishing, cancel)
        done += len(group)


@dataclass
class _DateFusion:
    """A date's fusion request on the restored inputs, and what choosing its method had to say (named by the date,
    not logged yet: the run logs each once)."""

    date: PlannedDate
    fusion: FusionRequest
    warnings: List[str]


def _groups(dates: List[_DateFusion], size: int) -> Iterator[List[_DateFusion]]:
    """Consecutive dates that can run as one batch (`batches_dates`) and whose requests differ only in the
    coarse target and the output, at most `size` a group; any other date is a group of its own."""
    group: List[_DateFusion] = []
    shared: Optional[FusionRequest] = None
    for date in dates:
        stacking = _stacking(date)
        if group and (len(group) == size or stacking is None or stacking != shared):
            yield group
            group = []
        group.append(date)
        shared = stacking
    if group:
        yield group


def _stacking(date: _DateFusion) -> Optional[FusionRequest]:
    """What dates stacked with this one must share, or None when its method runs each date on its own."""
    if not batches_dates(get_method(date.fusion.method)):
        return None
    return shared_by_dates(date.fusion)


def _on_cluster(client, request: SeriesRequest, scene: SeriesScene, dates: List[PlannedDate],
                references: Dict[str, Restored], model: ErrorModel, out: str, folder: str, progress: Progress,
                cancel: Optional[Cancel]) -> Iterator[Tuple[DateResult, List[str]]]:
    """Each date a task on the Dask cluster (its workers read the shared restored references in `folder`), given
    the series' dates and co-registration shift as this process found them."""
    entries = list(scene.entries.values())
    futures = [client.submit(_date_task, request, entries, scene.coarse_shift, date, references, model, out, folder,
                             pure=False) for date in dates]
    try:
        for index, (date, future) in enumerate(zip(dates, futures)):
            progress(index / len(dates), f"{date.date}: on the cluster")
            yield distributed.wait_for(future, cancel)
    finally:
        client.cancel(futures)


_WORKER_SURVEYS = ReferenceSurveys()
"""On a Dask worker: what its dates' methods learnt from the references alone, for its next dates with the same
ones (keyed by the reference files as they are on disk, so a rewritten reference is surveyed again)."""


def _date_task(request: SeriesRequest, entries: List[Dated], coarse_shift: Tuple[float, float], date: PlannedDate,
               references: Dict[str, Restored], model: ErrorModel, out: str, folder: str
               ) -> Tuple[DateResult, List[str]]:
    """On a Dask worker: open the series (its dates and shift as the caller found them), then fuse and finish
    one date like `_here` does."""
    with rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_BYTES), ExitStack() as stack:
        stack.enter_context(cpu_threads(request.threads))
        scene = SeriesScene(entries, request, stack, coarse_shift)
        work = WorkRasters(folder, scene.grid, stack, scene.open_limit)
        planned = _fusion_request(scene, work, request, date, references)
        with _fusion_unlogged(date.date):
            fused = fuse(planned.fusion, surveys=_WORKER_SURVEYS)
        return _finish(scene, work, planned, fused, model, out, silent, None)


def _remove_outputs(out: str, date: str) -> None:
    for path in output_names(out, date):
        if os.path.isfile(path):
            remove_output(path, f"{date}'s output")


def _prepare(scene: SeriesScene, work: WorkRasters, request: SeriesRequest, todo: List[PlannedDate],
             progress: Progress, cancel: Optional[Cancel]):
    """Restore every coarse date and reference the dates need; re-plan without references that are all cloud."""
    candidates = sorted({r for p in todo for r in p.references}, key=lambda d: scene.entries[d].day)
    coarse = sorted({p.date for p in todo if p.usable} | set(candidates), key=lambda d: scene.entries[d].day)
    restore_coarse(scene, coarse, work, request.max_gap, stage(progress, 0.0, 0.6), cancel)
    references = restore_references(scene, candidates, work, request.max_gap, stage(progress, 0.6, 0.9), cancel)
    clear = {d: r.clear for d, r in references.items()}
    scene.warnings.extend(f"the fine image of {date} is {share:.0%} clear after its mask (under {MIN_CLEAR:.0%}): it "
                          f"is not used as a reference" for date, share in clear.items() if share < MIN_CLEAR)
    replanned = {p.date: p for p in plan_entries(list(scene.entries.values()), request, clear)}
    todo = [replanned[p.date] for p in todo]
    progress(0.9, "cross-validating the references")
    model = error_model(scene, references, work, request.max_gap)
    return references, model, todo


def _fusion_request(scene: SeriesScene, work: WorkRasters, request: SeriesRequest, date: PlannedDate,
                    references: Dict[str, Restored]) -> _DateFusion:
    """The fusion of one date on the restored inputs, into the work folder (delta when the method needs two
    references and the date has one)."""
    pairs, warnings, method = date.pairs, [], request.method
    if len(pairs) == 1 and roles.FINE_REFERENCE_2 in get_method(method).required:
        warnings.append(f"{date.date}: one usable reference only; {method} needs two, delta is used")
        method = "delta"
    if not get_method(method).accepts(roles.FINE_REFERENCE_2):  # the nearer reference alone, without a warning
        pairs = pairs[:1]
    given = {roles.COARSE_TARGET: work.path(coarse_name(date.date))}
    for (fine_role, coarse_role), reference in zip(((roles.FINE_REFERENCE, roles.COARSE_REFERENCE),
                                                    (roles.FINE_REFERENCE_2, roles.COARSE_REFERENCE_2)), pairs):
        given[fine_role] = references[reference].image
        given[coarse_role] = work.path(coarse_name(reference))
    fusion = FusionRequest(output=work.path(_raw(date.date)), method=method,
                           coarse_resolution=scene.coarse_resolution, tile=request.tile, batch=request.batch,
                           device=request.device, threads=request.threads,
                           options=request.options if method == request.method else {}, **given)
    return _DateFusion(date, fusion, warnings)


def _finish(scene: SeriesScene, work: WorkRasters, planned: _DateFusion, result: FusionResult, model: ErrorModel,
            out: str, progress: Progress, cancel: Optional[Cancel]) -> Tuple[DateResult, List[str]]:
    """A fused date's final files from its raw prediction, which is then removed (the work folder keeps what
    later dates share, not every date's raw prediction). Its warnings: the method choice's, then the fusion's,
    named by the date."""
    date, pairs = planned.date.date, planned.date.pairs
    units_said = any(is_units_warning(w) for w in scene.warnings)  # the series' own check: not again every date
    said = [w for w in result.warnings if not (units_said and is_units_warning(w))]
    # auto's choice is the table's method column; only a scene too small to validate on is said, once for all dates
    warnings = planned.warnings + [f"{date}: {w}" for w in said if "auto takes" not in w] + \
        [w for w in said if "auto takes" in w and not result.validation]
    tags = {"STF_DATE": date, "STF_METHOD": result.method, "STF_REFERENCES": ",".join(pairs),
            "STF_TILE": str(result.tile), "STF_HALO": str(result.halo)}  # as `fuse` tags its output
    done = finish_date(scene, work, _raw(date), date, pairs, model, out, tags, progress, cancel)
    work.remove(_raw(date))
    return DateResult(date, "fused", pairs, result.method, done.fused, done.reliability, done.restored,
                      done.coarse_restored, done.fallback, done.expected_error, done.observed_rmse), warnings


class _ThisThread(logging.Filter):
    """Drops the warnings logged on the thread that made it, keeping their messages in `dropped`."""

    def __init__(self):
        super().__init__()
        self.thread = threading.get_ident()
        self.dropped: List[str] = []

    def filter(self, record: logging.LogRecord) -> bool:
        if record.thread != self.thread or record.levelno != logging.WARNING:
            return True
        if record.getMessage() not in self.dropped:
            self.dropped.append(record.getMessage())
        return False


@contextmanager
def _fusion_unlogged(label: str) -> Iterator[None]:
    """A date's fusion without logging its warnings on this thread (other threads' runs still log theirs): its
    result carries them, and the series logs each once, named by the date. A fusion that raises has no result:
    the warnings it had given are logged then, named by `label` (its date or dates), before the error."""
    muted = _ThisThread()
    log.addFilter(muted)
    try:
        yield
    except BaseException:
        log.removeFilter(muted)
        for message in muted.dropped:
            log.warning("%s: %s", label, message)
        raise
    finally:
        log.removeFilter(muted)


def _raw(date: str) -> str:
    """The work raster of a date's raw prediction, before its fallback and reliability."""
    return f"raw_{date}"


def _settings(request: SeriesRequest) -> dict:
    """What decides a date's images, as series.json records it: a run into the folder keeps the dates fused earlier
    only with the same (not which dates, nor how fast: tiles, devices, threads may change)."""
    spec = get_method(request.method)
    return json.loads(json.dumps({
        "method": request.method, "options": resolved_options(spec, request.options), "max_gap_days": request.max_gap,
        "mask_rules": request.mask_rules, "scales": request.scales, "bands": request.bands,
        "coarse_resolution": request.coarse_resolution, "resampling": request.resampling, "register": request.register,
    }))


def _facts(request: SeriesRequest, found: dict) -> dict:
    """series.json's run facts, then what this run or an earlier one with its settings found of the series."""
    return {"series": os.path.abspath(request.series), "method": request.method, "max_gap_days": request.max_gap,
            "settings": _settings(request), **found}


def _found(scene: SeriesScene, model: ErrorModel) -> dict:
    """What this run found of the series (`manifest.FOUND`): its cross-validation, and the co-registration shift
    when it registered the coarse images."""
    found = {"validation": {
        "error_per_root_day": model.per_root_day,
        "coarse_only_rmse": model.coarse,
        "cross_predictions": [dict(reference=r, predicted=t, days=d, rmse=e) for r, t, d, e in model.pairs],
    }}
    if scene.request.register:
        found["coarse_shift_px"] = list(scene.coarse_shift)
    return found
