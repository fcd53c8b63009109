"""Layers whose source is no plain file reach the engine by the name GDAL reads them by: a table of a GeoPackage or
a variable of a netCDF file (subdatasets). The table's name was dropped, and the engine read the file's first table
or refused it."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("qgis")

from conftest import write_bands  # noqa: E402
from helpers.rasters import pixels  # noqa: E402


def reflectance_bands(source: str, target, bands, **creation) -> None:
    """Bands of `source` (reflectance ×10000) as float32 reflectance, one raster or table each: a GeoPackage takes
    rasters of one band only, in tables named by `creation`'s RASTER_TABLE."""
    import rasterio

    with rasterio.open(source) as src:
        profile = dict(width=src.width, height=src.height, count=1, dtype="float32", crs=src.crs,
                       transform=src.transform)
        for band in bands:
            with rasterio.open(target, "w", **profile, **{k: v.format(band=band) for k, v in creation.items()}) as dst:
                dst.write(src.read([band]).astype("float32") * 1e-4)


def test_a_geopackage_tables_layer_is_fused_as_that_table(plugin, small_scene, tmp_path):
    import processing
    from qgis.core import QgsProject, QgsRasterLayer

    package = tmp_path / "fine.gpkg"
    reflectance_bands(small_scene["fine_reference"], package, [1, 2], driver="GPKG", RASTER_TABLE="band{band}",
                      APPEND_SUBDATASET="YES")
    table = QgsRasterLayer(f"GPKG:{package}:band2", "fine band 2")
    assert table.isValid()
    QgsProject.instance().addMapLayer(table)
    coarse = tmp_path / "coarse_band2.tif"
    write_bands(small_scene["coarse_target"], coarse, [2])
    common = {"COARSE_TARGET": str(coarse), "METHOD": "cubic", "DEVICE": "cpu", "TILE_SIZE": 0}
    from_table = processing.run("stf:fuse", {**common, "FINE_REFERENCE": table, "OUTPUT": str(tmp_path / "a.tif")})
    single = tmp_path / "fine_band2.tif"
    reflectance_bands(small_scene["fine_reference"], single, [2], driver="GTiff")
    from_file = processing.run("stf:fuse", {**common, "FINE_REFERENCE": str(single), "OUTPUT": str(tmp_path / "b.tif")})
    np.testing.assert_array_equal(pixels(from_table["OUTPUT"]), pixels(from_file["OUTPUT"]))
