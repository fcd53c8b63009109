"""Checks a request applies to its paths, switches and band lists as it is built: a path is text or any os.PathLike
(kept as text), a switch is True or False, bands are whole numbers, so a mistyped field is one StfError naming it,
not a crash deep in a run."""
from __future__ import annotations

import numbers
import os
from typing import Sequence

import numpy as np

from ..errors import StfError


def as_text_paths(request: object, names: Sequence[str]) -> None:
    """Each named field of `request` that holds a path as text (None and '' stay as they are)."""
    for name in names:
        value = getattr(request, name)
        if isinstance(value, os.PathLike):
            setattr(request, name, os.fspath(value))
        elif value is not None and not isinstance(value, str):
            raise StfError(f"{name} must be a path (text or a pathlib.Path), got {value!r}")


def check_on_disk(request: object, names: Sequence[str]) -> None:
    """Refuse an output in a GDAL virtual file system (/vsimem/, /vsis3/, …): outputs are written beside their
    target and renamed into place when complete, which needs a folder on disk."""
    for name in names:
        value = getattr(request, name)
        if value and value.replace("\\", "/").startswith("/vsi"):
            raise StfError(f"{name} must be a path on disk, not a GDAL virtual file ({value}): STF writes its outputs "
                           "beside the target and renames them when complete")


def check_switches(request: object, names: Sequence[str]) -> None:
    """Refuse a named field that is not True or False (text such as 'false' would count as on)."""
    for name in names:
        value = getattr(request, name)
        if not isinstance(value, (bool, np.bool_)):
            raise StfError(f"{name} must be True or False, got {value!r}")


def check_bands(bands: object) -> None:
    """Refuse band numbers that are not None or a list of whole numbers (text such as '3,2,1' is the CLI's)."""
    if bands is None:
        return
    if isinstance(bands, (str, bytes)) or not isinstance(bands, Sequence) or not all(
            isinstance(band, numbers.Integral) and not isinstance(band, bool) for band in bands):
        raise StfError(f"bands must be a list of 1-based band numbers, e.g. (3, 2, 1); got {bands!r}")
