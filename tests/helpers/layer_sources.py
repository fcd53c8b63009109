"""Raster sources that are not a plain file path: a raster inside a zip archive (as GDAL reads it: an engine input,
a QGIS layer's source), a file QGIS opens with GDAL open options."""
from __future__ import annotations

import zipfile
from pathlib import Path


def zipped(source: str, folder: Path) -> str:
    """The GDAL path of a copy of `source` inside a zip archive in `folder` (/vsizip//…/raster.zip/raster.tif)."""
    archive = folder / "raster.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.write(source, "raster.tif")
    return f"/vsizip/{archive}/raster.tif"


def with_overview_option(source: str, folder: Path) -> str:
    """A QGIS source reading a copy of `source` at its first overview (half the pixels): '<file>|option:…'."""
    import rasterio
    from rasterio.enums import Resampling

    copy = folder / "with_overviews.tif"
    with rasterio.open(source) as src, rasterio.open(copy, "w", **src.profile) as dst:
        dst.write(src.read())
    with rasterio.open(copy, "r+") as dataset:
        dataset.build_overviews([2], Resampling.average)
    return f"{copy}|option:OVERVIEW_LEVEL=0"
