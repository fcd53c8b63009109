"""What the dialog shows and checks about a picked raster layer before a run."""
from __future__ import annotations

import os
import re
from typing import Optional

from qgis.core import QgsProviderRegistry, QgsRasterLayer, QgsUnitTypes

SAVE_AS_GEOTIFF = "save it as GeoTIFF first"
"""What to do with a layer the fusion cannot read as QGIS shows it."""


def gdal_parts(layer: QgsRasterLayer) -> dict:
    """The parts of a GDAL layer's source: path, vsiPrefix and vsiSuffix (a raster inside an archive), openOptions."""
    return QgsProviderRegistry.instance().decodeUri("gdal", layer.source())


def file_path(layer: Optional[QgsRasterLayer]) -> Optional[str]:
    """The path the engine opens for a GDAL raster layer on a local file: the file, the GDAL path inside it for a
    raster in an archive (/vsizip//data/ct.zip/ct.tif), or GDAL's name of a subdataset in it (a GeoPackage table,
    a netCDF or HDF variable: GPKG:/data/a.gpkg:table, NETCDF:"/data/a.nc":var). None for WMS, XYZ, databases and
    other non-file sources, and for a layer opened with GDAL open options, which the engine would not apply (see
    `unusable`)."""
    if layer is None or layer.providerType() != "gdal":
        return None
    parts = gdal_parts(layer)
    path = parts.get("path") or layer.source()
    if parts.get("openOptions"):
        return None
    if SUBDATASET.match(layer.source()):
        return layer.source()
    if not os.path.isfile(path):
        return None
    return f"{parts.get('vsiPrefix') or ''}{path}{parts.get('vsiSuffix') or ''}"


SUBDATASET = re.compile(r"[A-Za-z][A-Za-z0-9_]+:")
"""How GDAL's name of a subdataset starts: its driver (never a Windows drive, one letter)."""


def unusable(layer: Optional[QgsRasterLayer]) -> str:
    """Why the fusion cannot take the layer, as words that follow its name ('' when it can, or none is picked):
    the engine reads files, and reads them as they are, so a layer QGIS opens with GDAL options (an overview
    level, …) would silently be fused as something else than what QGIS shows."""
    if layer is None or file_path(layer) is not None:
        return ""
    options = gdal_parts(layer).get("openOptions") if layer.providerType() == "gdal" else None
    if options:
        return f"is opened with GDAL options ({', '.join(options)}) the fusion cannot apply; {SAVE_AS_GEOTIFF}"
    return f"is not a local raster file ({layer.providerType()}); {SAVE_AS_GEOTIFF}"


def describe(layer: Optional[QgsRasterLayer]) -> str:
    """One line: size, pixel size, CRS and band count, so mismatches show before running."""
    if layer is None:
        return ""
    problem = unusable(layer)
    if problem:
        return f"the engine cannot read it: it {problem}"
    units = QgsUnitTypes.toAbbreviatedString(layer.crs().mapUnits())
    resolution = f"{layer.rasterUnitsPerPixelX():.6g}×{layer.rasterUnitsPerPixelY():.6g} {units}".strip()
    bands = f"{layer.bandCount()} band" + ("s" if layer.bandCount() != 1 else "")
    crs = layer.crs().authid() or layer.crs().description() or "no CRS"
    return f"{layer.width()}×{layer.height()} px · {resolution} · {crs} · {bands}"
