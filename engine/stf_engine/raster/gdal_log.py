"""GDAL errors that rasterio only logs: a full disk or a damaged block reports itself nowhere else."""
from __future__ import annotations

import logging
import threading
from contextlib import contextmanager
from typing import Iterator, List

GDAL_LOGGER = "rasterio._env"
"""Where rasterio logs the errors GDAL signals without raising them."""


class _Collect(logging.Handler):
    """GDAL errors that rasterio logs (as 'GDAL signalled an error') for the current thread."""

    def __init__(self):
        super().__init__(logging.INFO)
        self.thread = threading.get_ident()
        self.messages: List[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread == self.thread and record.levelno >= logging.INFO and "signalled an error" in record.msg:
            self.messages.append(record.getMessage().split("msg=", 1)[-1].strip("'\""))


@contextmanager
def gdal_errors() -> Iterator[List[str]]:
    """The GDAL error messages raised on this thread while the block runs (rasterio only logs some of them)."""
    logger = logging.getLogger(GDAL_LOGGER)
    handler = _Collect()
    level = logger.level
    if not level or level > logging.INFO:
        logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    try:
        yield handler.messages
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
