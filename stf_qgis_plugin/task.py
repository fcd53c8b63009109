"""The background QgsTasks that run one fusion or one series; they know nothing about dialogs or layers."""
from __future__ import annotations

import contextlib
import os
import threading
import time
import traceback
from dataclasses import dataclass
from types import ModuleType
from typing import Callable, Iterator, List, Optional

from qgis.core import QgsTask

from . import log


@dataclass
class TaskOutcome:
    """How a run ended: the engine's result, or a one-line reason plus details for the log."""

    request: object
    result: Optional[object] = None
    training: Optional[object] = None
    """The TrainingResult when the run trained its model first."""
    reason: Optional[str] = None
    details: Optional[str] = None
    cancelled: bool = False
    left_behind: Optional[object] = None
    """What a run stopped midway kept on purpose (a series' finished dates: the engine's KeptDates, whose text says
    which and how to go on); None when it kept nothing."""


DESCRIPTION_EVERY_S = 1.0
"""How often the task's description (what the task manager shows) is refreshed with the step and time left."""
TRAINING_SHARE = 0.7
"""Share of the progress bar given to training when a run trains its model first."""


class FusionTask(QgsTask):
    """Runs `engine.fuse` off the main thread (after `engine.train` when given a TrainingRequest); progress per
    batch or step, QGIS's cancel mapped to the engine's event."""

    TITLE = "Spatiotemporal fusion"

    def __init__(self, engine: ModuleType, request, on_finished: Optional[Callable[[TaskOutcome], None]], training=None):
        super().__init__(f"{self.TITLE} ({request.method})", QgsTask.CanCancel)
        self.engine = engine
        self.request = request
        self.training = training
        self.on_finished = on_finished
        self.outcome = TaskOutcome(request)
        self._cancel = threading.Event()
        self._created_folders = _missing_folders(self.output_folders())
        self._new_checkpoint = training.output if training and not os.path.exists(training.output) else None
        self._title = self.description()
        self._started = time.monotonic()
        self._shown = 0.0

    def run(self) -> bool:
        self._started = time.monotonic()
        try:
            self.outcome.result = self.work()
            return True
        except Exception as exc:  # noqa: BLE001  (reported in the message bar and log, never raised into QGIS)
            self.stopped_by(exc)
        return False

    def stopped_by(self, exc: Exception) -> None:
        """The outcome of a run `exc` stopped: a cancel, the engine's one-line reason, or an internal error (a bug,
        with its traceback for the log); and what the run kept on purpose, for the message to say."""
        self.outcome.left_behind = getattr(exc, "left_behind", None)
        if isinstance(exc, self.engine.FusionCancelled):
            self.outcome.cancelled = True
            self.outcome.reason = "cancelled"
        elif isinstance(exc, self.engine.StfError):
            self.outcome.reason = str(exc)
        else:
            self.outcome.reason = internal_error(exc)
            self.outcome.details = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))

    def work(self):
        """The engine's calls, on the task's thread: training first when asked, then the fusion."""
        start = 0.0
        if self.training is not None:
            progress = self._stage(0.0, TRAINING_SHARE)
            self.outcome.training = self.engine.train(self.training, progress=progress, cancel=self._cancel)
            self.request.weights = self.outcome.training.checkpoint
            start = TRAINING_SHARE
        return self.engine.fuse(self.request, progress=self._stage(start, 1.0), cancel=self._cancel)

    def output_folders(self) -> List[Optional[str]]:
        """Where the run writes (a trained checkpoint goes beside the output): what a failed run cleans up."""
        return [self.request.error_maps_dir, os.path.dirname(os.path.abspath(self.request.output))]

    def cancel(self) -> None:
        self._cancel.set()
        super().cancel()

    def detach(self) -> None:
        """Hand the outcome to no one (the plugin is unloading); the task still cleans up after itself."""
        self.on_finished = None

    def _stage(self, start: float, stop: float) -> Callable[[float, str], None]:
        """The engine's progress callable for one stage, mapped onto [start, stop] of the task's bar."""

        def progress(fraction: float, message: str) -> None:
            if self.isCanceled():
                self._cancel.set()
            overall = start + (stop - start) * fraction
            self.setProgress(100.0 * overall)
            now = time.monotonic()
            if now - self._shown >= DESCRIPTION_EVERY_S:
                self._shown = now
                left = time_left(now - self._started, overall)
                details = ", ".join(part for part in (message, left) if part)
                self.setDescription(f"{self._title}: {details}" if details else self._title)

        return progress

    def finished(self, ok: bool) -> None:
        """Main thread, once: hand the outcome out (QGIS deletes the task object afterwards)."""
        if not ok:
            if self.outcome.reason is None:
                self.outcome.cancelled = True
                self.outcome.reason = "cancelled"
            if self._new_checkpoint and os.path.exists(self._new_checkpoint):
                with _left_if_held(self._new_checkpoint):
                    os.remove(self._new_checkpoint)
            _remove_empty(self._created_folders)
        if self.on_finished is not None:
            self.on_finished(self.outcome)


class SeriesTask(FusionTask):
    """Runs `engine.fuse_series` for a SeriesRequest; a cancelled or failed run leaves the dates it finished
    (a new run resumes from them) and removes only the folders it created and left empty."""

    TITLE = "Spatiotemporal fusion series"

    def work(self):
        return self.engine.fuse_series(self.request, progress=self._stage(0.0, 1.0), cancel=self._cancel)

    def output_folders(self) -> List[Optional[str]]:
        return [os.path.abspath(self.request.output_dir)]


def internal_error(exc: Exception) -> str:
    """What the message bar says of an exception the engine did not mean (a bug, not a problem with the inputs): its
    first line, the rest being in the traceback."""
    said = str(exc).strip().partition("\n")[0]
    return (f"internal error of STF ({type(exc).__name__}: {said}), not a problem with your inputs; please report it "
            f"with its traceback from the log panel (STF)")


def time_left(elapsed: float, fraction: float) -> str:
    """'about 2 min left' from the time so far and the share done; empty until the estimate means something."""
    if fraction < 0.02 or fraction >= 1.0 or elapsed < 2.0:
        return ""
    seconds = elapsed * (1.0 - fraction) / fraction
    if seconds < 60:
        return f"about {max(1, round(seconds))} s left"
    if seconds < 3600:
        return f"about {round(seconds / 60)} min left"
    return f"about {seconds / 3600:.1f} h left"


def _missing_folders(folders: List[Optional[str]]) -> List[str]:
    """The folders (and their parents) a run will create, deepest first."""
    created = []
    for path in folders:
        while path and not os.path.exists(path) and path not in created:
            created.append(path)
            path = os.path.dirname(path)
    return sorted(created, key=len, reverse=True)


def _remove_empty(folders: List[str]) -> None:
    """Remove the folders a failed run created, if nothing else was put in them."""
    for folder in folders:
        with _left_if_held(folder):
            if os.path.isdir(folder) and not os.listdir(folder):
                os.rmdir(folder)


@contextlib.contextmanager
def _left_if_held(path: str) -> Iterator[None]:
    """Removing `path` on the main thread, where an error would reach QGIS's Python error dialog: what cannot be
    removed (on Windows, what another program holds open) stays, with a line in the log."""
    try:
        yield
    except OSError as exc:
        log.warning(f"left {path} in place after the failed run: {exc.strerror or exc}")
