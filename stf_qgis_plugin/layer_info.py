"""What the dialog shows and checks about a picked raster layer before a run."""
from __future__ import annotations

import os
from typing import Optional

from qgis.core import QgsProviderRegistry, QgsRasterLayer, QgsUnitTypes


def file_path(layer: Optional[QgsRasterLayer]) -> Optional[str]:
    """The local file behind a GDAL raster layer; None for WMS, XYZ, databases and other non-file sources."""
    if layer is None or layer.providerType() != "gdal":
        return None
    path = QgsProviderRegistry.instance().decodeUri("gdal", layer.source()).get("path") or layer.source()
    return path if os.path.isfile(path) else None


def describe(layer: Optional[QgsRasterLayer]) -> str:
    """One line: size, pixel size, CRS and band count, so mismatches show before running."""
    if layer is None:
        return ""
    if file_path(layer) is None:
        return f"not a local raster file ({layer.providerType()}): the engine cannot read it"
    units = QgsUnitTypes.toAbbreviatedString(layer.crs().mapUnits())
    resolution = f"{layer.rasterUnitsPerPixelX():.6g}×{layer.rasterUnitsPerPixelY():.6g} {units}".strip()
    bands = f"{layer.bandCount()} band" + ("s" if layer.bandCount() != 1 else "")
    crs = layer.crs().authid() or layer.crs().description() or "no CRS"
    return f"{layer.width()}×{layer.height()} px · {resolution} · {crs} · {bands}"
