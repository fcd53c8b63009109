"""Opening rasters with one-line errors, and the one way to put another raster onto a grid."""
from __future__ import annotations

import os
import re
import warnings
from contextlib import ExitStack
from typing import Optional, Sequence, Tuple

import numpy as np
import rasterio
from rasterio.enums import Resampling

from ..errors import StfError
from .gdal_log import gdal_errors
from .grid import Grid, no_crs, overlap_fraction, resolution_in
from .reader import AlignedRaster, Scale, units_of


# Without a georeference rasterio warns as it opens the file; the grid checks say so in one line naming the role
# instead. A filter set once (catch_warnings is not thread-safe, and reader threads open rasters too).
warnings.filterwarnings("ignore", category=rasterio.errors.NotGeoreferencedWarning)

RASTER_SIGNATURES = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+", b"\x89HDF", b"CDF", b"\x00\x00\x00\x0cjP")
"""First bytes of TIFF/BigTIFF, HDF5/netCDF and JPEG 2000 files: such a file that does not open is damaged."""


GDAL_NAME = re.compile(r"/vsi|[A-Za-z][A-Za-z0-9_]+:")
"""How a path GDAL resolves itself starts: a virtual file system (/vsizip/archive.zip/image.tif) or a subdataset's
driver (NETCDF:"file.nc":var, HDF4_EOS:EOS_GRID:"file.hdf":grid:field, GPKG:file.gpkg:table); never a Windows
drive, one letter."""
QUOTED_FILE = re.compile(r'"([^"]+)"')
"""The file in a subdataset name that quotes it (NETCDF:"file.nc":var)."""


def open_raster(path: str, label: str):
    """Open a raster with a one-line error naming its role when it is missing, damaged or not a raster. A GDAL
    virtual path or subdataset name (see GDAL_NAME) is left to GDAL to find."""
    virtual = bool(path) and GDAL_NAME.match(path) is not None
    if not virtual and (not path or not os.path.isfile(path)):
        if path and os.path.isdir(path):
            raise StfError(f"{label}: {path} is a folder, not a raster file")
        raise StfError(f"{label}: file not found: {path}")
    try:
        with gdal_errors() as errors:
            dataset = rasterio.open(path)
    except (rasterio.errors.RasterioError, OSError) as exc:
        if virtual:
            _refuse_missing_subdataset(path, label)
        damaged = False
        if not virtual:
            with open(path, "rb") as handle:
                damaged = handle.read(8).startswith(RASTER_SIGNATURES)
        what = "the file is damaged" if damaged else "not a readable raster"
        raise StfError(f"{label}: {what} ({_short(exc)}): {path}") from None
    if errors:
        dataset.close()
        raise StfError(f"{label}: the file is damaged ({_short(errors[0])}): {path}")
    if any(np.issubdtype(np.dtype(dtype), np.complexfloating) for dtype in dataset.dtypes):
        dataset.close()
        raise StfError(f"{label} holds complex numbers ({dataset.dtypes[0]}); give a raster of real values: {path}")
    return dataset


def _refuse_missing_subdataset(name: str, label: str) -> None:
    """StfError naming what a file holds when a subdataset name (NETCDF:"f.nc":var) that GDAL cannot open names an
    existing file: the variable or path in it is wrong, where GDAL says 'No such file or directory'."""
    quoted = QUOTED_FILE.search(name)
    if not quoted or not os.path.isfile(quoted.group(1)):
        return
    file = quoted.group(1)
    try:
        with rasterio.open(file) as container:
            names = container.tags(ns="SUBDATASETS")
        held = [value.replace(f'"{file}"', '"…"') for key, value in sorted(names.items(), key=_numbered)
                if key.endswith("_NAME")]
    except (rasterio.errors.RasterioError, OSError):
        held = []
    listed = f"it holds {', '.join(held[:8])}{', …' if len(held) > 8 else ''}" if held else "GDAL finds none in it"
    raise StfError(f"{label}: {file} holds no subdataset {name}; {listed}")


def _numbered(item) -> int:
    """SUBDATASET_<n>_NAME in the order of n."""
    return int(re.sub(r"\D", "", item[0]) or 0)


def _short(message) -> str:
    text = str(message).replace(os.linesep, " ")
    return text if len(text) <= 160 else text[:157] + "…"


def choose_resampling(grid: Grid, dataset, upsampling: str) -> Resampling:
    """Averaging when the input is finer than the grid, the requested interpolation otherwise."""
    if resolution_in(grid, dataset) < grid.resolution * 0.99:
        return Resampling.average
    try:
        return Resampling[upsampling]
    except KeyError:
        raise StfError(f"unknown resampling '{upsampling}'") from None


def check_covers(grid: Grid, dataset, label: str, against: str = "the fine reference") -> float:
    """The share of the grid the dataset covers; StfError when it has no CRS or does not overlap at all."""
    if dataset.crs is None:
        raise StfError(no_crs(label, dataset.name))
    covered = overlap_fraction(grid, dataset)
    if covered <= 0:
        raise StfError(f"{label} does not overlap {against}: {dataset.name}")
    return covered


def open_on_grid(
    stack: ExitStack,
    path: str,
    label: str,
    grid: Grid,
    scale: Optional[Scale] = None,
    upsampling: str = "bilinear",
    bands: Optional[Sequence[int]] = None,
    shift: Tuple[float, float] = (0.0, 0.0),
    against: str = "the fine reference",
    dataset=None,
) -> AlignedRaster:
    """A raster read onto `grid` (averaged when finer, `upsampling` otherwise); closed with the stack.

    `scale` (a factor or a (scale, offset) pair) overrides the raster's own units; see `units_of`.
    `dataset` reuses an already open raster for `path` (its closing stays with whoever opened it).
    """
    if dataset is None:
        dataset = stack.enter_context(open_raster(path, label))
    check_covers(grid, dataset, label, against)
    resampling = choose_resampling(grid, dataset, upsampling)
    reader = AlignedRaster(dataset, label, grid, units_of(dataset, scale), bands, resampling, shift)
    stack.callback(reader.close)
    return reader


def reopen(reader: AlignedRaster, stack: ExitStack) -> AlignedRaster:
    """The same aligned raster on a dataset handle of its own, for another thread (GDAL handles are not shared
    between threads); closed with the stack."""
    dataset = stack.enter_context(open_raster(reader.dataset.name, reader.label))
    copy = AlignedRaster(dataset, reader.label, reader.grid, reader.units, reader.bands, reader.resampling,
                         reader.shift)
    stack.callback(copy.close)
    return copy
