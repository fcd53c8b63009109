"""Reading ahead and writing behind on threads: order kept, the readers run ahead of the consumer by a bounded
amount, several at once when asked, errors reach the caller as raised, and every thread is gone when the block
is left."""
from __future__ import annotations

import threading
import time

import pytest

from stf_engine.core.pipeline import WriteBehind, map_ahead
from stf_engine.errors import StfError


def stf_threads():
    return [t for t in threading.enumerate() if t.name.startswith("stf-")]


def test_map_ahead_keeps_order_and_reads_the_next_items_while_one_is_used():
    produced, gate = [], threading.Event()

    def read(index):
        produced.append(index)
        return index

    seen = []
    with map_ahead(read, range(6), depth=2) as ahead:
        for item in ahead:
            if item == 0:
                for _ in range(100):  # the reader fills the queue while item 0 is in use
                    if len(produced) >= 3:
                        break
                    gate.wait(0.02)
                assert 3 <= len(produced) <= 4, "two waiting, one being read: bounded by the depth"
            seen.append(item)
    assert seen == list(range(6)) and not stf_threads()


def test_a_reader_error_reaches_the_caller_and_leaving_early_stops_the_reader():
    def failing(index):
        if index == 1:
            raise StfError("cannot read fine reference f1.tif: corrupt block")
        return index

    with pytest.raises(StfError, match="corrupt block"):
        with map_ahead(failing, range(4)) as ahead:
            list(ahead)
    endless = iter(int, 1)  # never ends: only leaving the block stops it
    with map_ahead(lambda item: item, endless) as ahead:
        assert next(ahead) == 0
    assert not stf_threads()


def test_several_readers_work_at_once_and_the_caller_still_gets_the_items_in_order():
    running, most, lock = [0], [0], threading.Lock()

    def read(index):
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        time.sleep(0.05 * (3 - index % 3))  # later items of each three finish first
        with lock:
            running[0] -= 1
        return index

    with map_ahead(read, range(12), workers=3, depth=3) as ahead:
        assert list(ahead) == list(range(12))
    assert most[0] == 3, "three reads in flight at once, never more than the depth"
    assert not stf_threads()


def test_write_behind_runs_every_write_in_order_on_one_other_thread():
    written, threads = [], set()
    with WriteBehind(depth=2) as writes:
        for index in range(20):
            writes.submit(lambda index=index: written.append(index) or threads.add(threading.current_thread().name))
    assert written == list(range(20)) and threads == {"stf-writer"} and not stf_threads()


def test_a_failed_write_is_raised_in_the_caller_and_later_writes_do_not_run():
    written = []

    def fail():
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        with WriteBehind(depth=1) as writes:
            writes.submit(fail)
            for index in range(50):
                writes.submit(lambda index=index: written.append(index))
    assert written == [] and not stf_threads()


def test_an_error_in_the_caller_stops_the_writer_without_running_what_waits():
    started, release, written = threading.Event(), threading.Event(), []

    def slow():
        started.set()
        release.wait(5)

    with pytest.raises(KeyboardInterrupt):
        with WriteBehind(depth=4) as writes:
            writes.submit(slow)
            writes.submit(lambda: written.append("late"))
            started.wait(5)
            threading.Timer(0.2, release.set).start()  # the write in progress ends after the caller has failed
            raise KeyboardInterrupt
    assert written == [] and not stf_threads()
