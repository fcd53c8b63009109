"""Reading ahead and writing behind on threads, so the device never waits on GDAL and the disk never waits on
the device: reader threads make a bounded number of the next batches while the current one is predicted,
and a writer thread stores finished batches in order while the next one runs. Errors cross back to the
caller as they were raised; leaving the `with` block (done, error, cancel) stops and joins both threads."""
from __future__ import annotations

import queue
import threading
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import Callable, Deque, Iterable, Iterator, Optional, TypeVar

S = TypeVar("S")
T = TypeVar("T")
POLL_SECONDS = 0.1
"""How often a waiting thread looks whether the other side has stopped."""
_END = object()


@contextmanager
def map_ahead(function: Callable[[S], T], items: Iterable[S], workers: int = 1,
              depth: int = 2) -> Iterator[Iterator[T]]:
    """`function(item)` of each item on `workers` reader threads, at most `depth` results made ahead of the
    caller, who gets them in order. Leaving the block drops the items not started and waits for the rest."""
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="stf-reader")
    pending: Deque[Future] = deque()
    source = iter(items)

    def fill() -> None:
        while len(pending) < depth:
            item = next(source, _END)
            if item is _END:
                return
            pending.append(pool.submit(function, item))

    def results() -> Iterator[T]:
        fill()
        while pending:
            result = pending.popleft().result()
            fill()
            yield result

    try:
        yield results()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


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
