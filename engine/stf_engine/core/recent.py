"""A bounded set of open resources, least recently used closed first: a series touches many files, and
keeping every one open would make memory grow with the number of dates."""
from __future__ import annotations

from collections import OrderedDict
from contextlib import ExitStack
from typing import Callable, Generic, Hashable, Tuple, TypeVar

T = TypeVar("T")

MAX_OPEN = 8
"""Resources kept open at once: enough for a date's references and their neighbours."""


class RecentlyOpened(Generic[T]):
    """`get(key, open)` returns the resource for `key`, opening it with `open(stack)` on first use; closing all
    with `close()` (or when used as a context manager)."""

    def __init__(self, limit: int = MAX_OPEN):
        self.limit = limit
        self._open: "OrderedDict[Hashable, Tuple[ExitStack, T]]" = OrderedDict()

    def get(self, key: Hashable, opener: Callable[[ExitStack], T]) -> T:
        if key in self._open:
            self._open.move_to_end(key)
            return self._open[key][1]
        stack = ExitStack()
        try:
            value = opener(stack)
        except BaseException:
            stack.close()
            raise
        self._open[key] = (stack, value)
        while len(self._open) > self.limit:
            _, (oldest, _) = self._open.popitem(last=False)
            oldest.close()
        return value

    def discard(self, key: Hashable) -> None:
        """Close the resource for `key` if it is open (before its file is removed, which an open file can stop)."""
        entry = self._open.pop(key, None)
        if entry is not None:
            entry[0].close()

    def close(self) -> None:
        while self._open:
            _, (stack, _) = self._open.popitem(last=False)
            stack.close()

    def __enter__(self) -> "RecentlyOpened[T]":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
