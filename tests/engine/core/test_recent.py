"""RecentlyOpened keeps at most `limit` resources open, closing the least recently used first."""
from contextlib import contextmanager

import pytest

from stf_engine.core.recent import RecentlyOpened


def test_least_recently_used_is_closed_first_and_everything_on_close():
    opened, closed = [], []

    @contextmanager
    def resource(name):
        opened.append(name)
        yield name
        closed.append(name)

    def opener(name):
        return lambda stack: stack.enter_context(resource(name))

    with RecentlyOpened(limit=2) as recent:
        assert recent.get("a", opener("a")) == "a"
        recent.get("b", opener("b"))
        recent.get("a", opener("a"))  # used again: "b" is now the oldest
        recent.get("c", opener("c"))
        assert opened == ["a", "b", "c"] and closed == ["b"]
        recent.get("b", opener("b"))
        assert opened == ["a", "b", "c", "b"] and closed == ["b", "a"]
    assert sorted(closed) == ["a", "b", "b", "c"]


def test_a_failed_open_leaves_nothing_open():
    closed = []

    def failing(stack):
        stack.callback(closed.append, "partial")
        raise OSError("cannot open")

    recent = RecentlyOpened()
    with pytest.raises(OSError):
        recent.get("x", failing)
    assert closed == ["partial"]
    recent.close()


def test_discard_closes_one_resource_now_and_opens_it_again_when_asked():
    closed = []

    def opener(name):
        def open_(stack):
            stack.callback(closed.append, name)
            return name
        return open_

    with RecentlyOpened() as recent:
        recent.get("a", opener("a"))
        recent.get("b", opener("b"))
        recent.discard("a")
        recent.discard("missing")  # nothing open under that key: nothing happens
        assert closed == ["a"]
        assert recent.get("a", opener("a")) == "a"
    assert sorted(closed) == ["a", "a", "b"]
