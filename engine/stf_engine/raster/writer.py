"""Windowed GeoTIFF output: tiled, compressed, written to a temporary file and renamed only on success."""
from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from typing import Dict, Optional, Sequence, Tuple

import numpy as np
import rasterio
from rasterio.windows import Window

from .grid import Grid
from .reader import Units

BLOCK = 256


def compression() -> str:
    """ZSTD where this GDAL has it, DEFLATE otherwise."""
    return "zstd" if "ZSTD" in _gtiff_compressions() else "deflate"


def _gtiff_compressions() -> str:
    from osgeo import gdal  # noqa: F401  (optional: Debian's GDAL bindings)

    return gdal.GetDriverByName("GTiff").GetMetadataItem("DMD_CREATIONOPTIONLIST") or ""


def geotiff_profile(grid: Grid, count: int, dtype: str, nodata) -> Dict:
    try:
        compress = compression()
    except ImportError:
        compress = "deflate"
    return dict(
        driver="GTiff",
        crs=grid.crs,
        transform=grid.transform,
        width=grid.width,
        height=grid.height,
        count=count,
        dtype=dtype,
        nodata=nodata,
        tiled=True,
        blockxsize=BLOCK,
        blockysize=BLOCK,
        compress=compress,
        predictor=3 if np.issubdtype(np.dtype(dtype), np.floating) else 2,
        bigtiff="IF_SAFER",
        interleave="pixel" if count <= 4 else "band",
    )


@dataclass(frozen=True)
class Encoding:
    """How reflectance is stored in an output: the fine reference's dtype, scale/offset, nodata and band names."""

    dtype: str
    nodata: Optional[float]
    units: Units
    descriptions: Tuple[Optional[str], ...] = ()

    @property
    def output_nodata(self):
        """The fine reference's nodata, else NaN for floats and the type's minimum for integers."""
        if self.nodata is not None:
            return self.nodata
        dtype = np.dtype(self.dtype)
        return float("nan") if np.issubdtype(dtype, np.floating) else np.iinfo(dtype).min

    def to_stored(self, reflectance: np.ndarray, valid: np.ndarray) -> np.ndarray:
        """(C, h, w) reflectance → stored values, nodata where `valid` is False; data never equals nodata."""
        dtype = np.dtype(self.dtype)
        nodata = self.output_nodata
        stored = self.units.to_stored(reflectance)
        if np.issubdtype(dtype, np.integer):
            info = np.iinfo(dtype)
            stored = np.clip(np.rint(stored), info.min, info.max)
            stored[(stored == nodata) & valid] -= 1 if nodata == info.max else -1
        stored = stored.astype(dtype)
        stored[:, ~valid] = nodata
        return stored


class GeoTiffWriter:
    """One output being written by windows under a temporary name beside its final path."""

    def __init__(self, path: str, profile: Dict, descriptions: Optional[Sequence[str]], tags: Dict[str, str]):
        self.path = os.path.abspath(path)
        folder = os.path.dirname(self.path)
        os.makedirs(folder, exist_ok=True)
        fd, self.partial = tempfile.mkstemp(
            prefix="." + os.path.basename(self.path) + ".", suffix=".partial.tif", dir=folder
        )
        os.close(fd)
        self.dataset = rasterio.open(self.partial, "w", **profile)
        for band, text in enumerate(descriptions or (), start=1):
            self.dataset.set_band_description(band, text)
        if tags:
            self.dataset.update_tags(**tags)

    def write(self, array: np.ndarray, row: int, col: int) -> None:
        """Write (C, h, w) at the given offset of the grid."""
        self.dataset.write(array, window=Window(col, row, array.shape[-1], array.shape[-2]))

    def close(self) -> None:
        if not self.dataset.closed:
            self.dataset.close()


class PendingOutputs:
    """Outputs written under temporary names and renamed together only when the whole run succeeds.

    On any failure or cancel every partial file is removed, so nothing half-written is left behind.
    """

    def __init__(self):
        self.writers = []

    def create(
        self,
        path: str,
        grid: Grid,
        count: int,
        dtype: str,
        nodata=None,
        descriptions: Optional[Sequence[str]] = None,
        tags: Optional[Dict[str, str]] = None,
    ) -> GeoTiffWriter:
        writer = GeoTiffWriter(path, geotiff_profile(grid, count, dtype, nodata), descriptions, tags or {})
        self.writers.append(writer)
        return writer

    def __enter__(self) -> "PendingOutputs":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        for writer in self.writers:
            writer.close()
        if exc_type is None:
            for writer in self.writers:
                os.replace(writer.partial, writer.path)
        else:
            for writer in self.writers:
                if os.path.exists(writer.partial):
                    os.remove(writer.partial)
