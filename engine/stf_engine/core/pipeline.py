"""Reading ahead and writing behind on threads, so the device never waits on GDAL and the disk never waits on
the device: a reader thread fills a bounded queue with the next batches while the current one is predicted,
and a writer thread stores finished batches in order while the next one runs. Errors cross back to the
caller as they were raised; leaving the `with` block (done, error, cancel) stops and joins both threads."""
from __future__ import annotations

import queue
import threading
from contextlib import contextmanager
from typing import Callable, Iterable, Iterator, Optional, TypeVar

T = TypeVar("T")
POLL_SECONDS = 0.1
"""How often a waiting thread looks whether the other side has stopped."""
_END = object()


@contextmanager
def read_ahead(items: Iterable[T], depth: int = 2) -> Iterator[Iterator[T]]:
    """`items` produced on a reader thread, at most `depth` of them waiting; the caller iterates the result."""
    waiting: "queue.Queue" = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                if not _put(waiting, (item, None), stop):
                    return
            _put(waiting, (_END, None), stop)
        except BaseException as exc:  # noqa: BLE001  (handed to the caller, who raises it)
            _put(waiting, (_END, exc), stop)

    thread = threading.Thread(target=produce, name="stf-reader", daemon=True)
    thread.start()

    def consume() -> Iterator[T]:
        while True:
            item, error = waiting.get()
            if error is not None:
                raise error
            if item is _END:
                return
            yield item

    try:
        yield consume()
    finally:
        stop.set()
        thread.join()


class WriteBehind:
    """One writer thread running submitted writes in order; `submit` waits while `depth` writes are pending,
    and re-raises a failed write's error, as does leaving the block."""

    def __init__(self, depth: int = 2):
        self._pending: "queue.Queue" = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._error: Optional[BaseException] = None
        self._thread = threading.Thread(target=self._run, name="stf-writer", daemon=True)

    def __enter__(self) -> "WriteBehind":
        self._thread.start()
        return self

    def submit(self, write: Callable[[], None]) -> None:
        self._raise()
        if not _put(self._pending, write, self._stop):
            self._raise()

    def __exit__(self, kind, value, traceback) -> None:
        if kind is None:
            _put(self._pending, None, self._stop)  # every write submitted so far still runs
        else:
            self._stop.set()
        self._thread.join()
        if kind is None:
            self._raise()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                write = self._pending.get(timeout=POLL_SECONDS)
            except queue.Empty:
                continue
            if write is None:
                return
            try:
                write()
            except BaseException as exc:  # noqa: BLE001  (raised in the caller's thread)
                self._error = exc
                self._stop.set()
                return

    def _raise(self) -> None:
        if self._error is not None:
            raise self._error


def _put(waiting: "queue.Queue", item, stop: threading.Event) -> bool:
    """Put `item`, waiting for room unless `stop` is set first; whether it was put."""
    while not stop.is_set():
        try:
            waiting.put(item, timeout=POLL_SECONDS)
            return True
        except queue.Full:
            continue
    return False
