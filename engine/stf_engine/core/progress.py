"""The one progress, cancel and warnings protocol every long engine step uses.

- progress: a callable `progress(fraction, message)` with fraction in [0, 1];
- cancel: any object with `is_set()` (a `threading.Event`), checked between units of work;
- warnings: a `Warnings` list collected on the result and logged once as they arise.
"""
from __future__ import annotations

import logging
from typing import Callable, List, Optional, Protocol

from ..errors import FusionCancelled, StfError

Progress = Callable[[float, str], None]
log = logging.getLogger("stf_engine")
log.addHandler(logging.NullHandler())  # a library's: warnings reach callers in results, and logs only where configured


class Cancel(Protocol):
    def is_set(self) -> bool: ...


def silent(fraction: float, message: str) -> None:
    """A progress callable that reports nowhere."""


def check_cancel(cancel: Optional[Cancel], what: str = "cancelled") -> None:
    """Raise FusionCancelled when the caller asked to stop."""
    if cancel is not None and cancel.is_set():
        raise FusionCancelled(what)


def reporter(progress: Optional[Progress], cancel: Optional[Cancel]) -> Progress:
    """The progress callable a run reports to (`silent` when none), once both callbacks are checked: a bool or a
    string given as either would otherwise fail deep in the run with Python's own message."""
    if progress is not None and not callable(progress):
        raise StfError(f"progress must be a callable progress(fraction, message), not {type(progress).__name__}")
    if cancel is not None and not callable(getattr(cancel, "is_set", None)):
        raise StfError(f"cancel must be an object with is_set(), such as a threading.Event, not "
                       f"{type(cancel).__name__}")
    return progress or silent


def stage(progress: Progress, start: float, stop: float, label: str = "") -> Progress:
    """Progress of one step mapped onto [start, stop] of the whole run's bar, its messages prefixed by label."""

    def report(fraction: float, message: str) -> None:
        text = f"{label}: {message}" if label and message else (label or message)
        progress(start + (stop - start) * min(max(fraction, 0.0), 1.0), text)

    return report


class Ticker:
    """Progress and cancel inside one unit of work (a batch of tiles): the method calls `tick(fraction)` from
    its inner loops, or `tick()` just to honour a cancel, so a long tile still reports and stops promptly."""

    def __init__(self, progress: Progress = silent, cancel: Optional[Cancel] = None):
        self.progress, self.cancel = progress, cancel
        self.start, self.stop, self.message = 0.0, 0.0, ""

    def span(self, start: float, stop: float, message: str) -> None:
        """The share of the whole run the next unit of work covers, and what to call it."""
        self.start, self.stop, self.message = start, stop, message

    def __call__(self, fraction: Optional[float] = None) -> None:
        check_cancel(self.cancel)
        if fraction is not None:
            self.progress(self.start + (self.stop - self.start) * min(max(fraction, 0.0), 1.0), self.message)


class Warnings(List[str]):
    """Warnings of one run, in order and without repeats; each is logged once when added."""

    def add(self, message: str) -> None:
        if message not in self:
            self.append(message)
            log.warning(message)

    def extend_unique(self, messages) -> None:
        for message in messages:
            self.add(message)
