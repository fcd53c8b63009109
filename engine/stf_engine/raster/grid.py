"""The fine reference grid that every input is aligned onto, and geometry checks against it."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Tuple

from rasterio.crs import CRS
from rasterio.transform import Affine
from rasterio.warp import transform_bounds

from ..errors import StfError


def no_crs(label: str, name: str) -> str:
    """The refusal of a raster without a CRS, with how to give it one: in the file, where every program reads it."""
    return (f"{label} has no coordinate reference system; assign one to the file, e.g. gdal_edit.py -a_srs EPSG:32650 "
            f"(the EPSG code of its projection): {name}")


@dataclass(frozen=True)
class Grid:
    """CRS, transform and shape of the output (taken from the fine reference)."""

    crs: CRS
    transform: Affine
    width: int
    height: int

    @property
    def resolution(self) -> float:
        """Pixel size in CRS units (mean of x and y)."""
        return (abs(self.transform.a) + abs(self.transform.e)) / 2

    @property
    def bounds(self) -> Tuple[float, float, float, float]:
        """(west, south, east, north) in the grid's CRS."""
        return _bounds(self)

    @classmethod
    def of(cls, dataset) -> "Grid":
        if dataset.crs is None:
            raise StfError(no_crs("the raster", dataset.name))
        return cls(dataset.crs, dataset.transform, dataset.width, dataset.height)

    def same_as(self, dataset) -> bool:
        return (
            dataset.crs == self.crs
            and dataset.width == self.width
            and dataset.height == self.height
            and dataset.transform.almost_equals(self.transform, precision=1e-9 * max(1.0, self.resolution))
        )


def _bounds(grid: Grid) -> Tuple[float, float, float, float]:
    west, north = grid.transform * (0, 0)
    east, south = grid.transform * (grid.width, grid.height)
    return min(west, east), min(south, north), max(west, east), max(south, north)


def bounds_in(grid: Grid, dataset) -> Tuple[float, float, float, float]:
    """The dataset's bounds expressed in the grid's CRS."""
    if dataset.crs == grid.crs:
        return tuple(dataset.bounds)
    return transform_bounds(dataset.crs, grid.crs, *dataset.bounds, densify_pts=21)


def overlap_fraction(grid: Grid, dataset) -> float:
    """Share of the grid's area that the dataset covers (0 when they do not overlap)."""
    gw, gs, ge, gn = grid.bounds
    dw, ds, de, dn = bounds_in(grid, dataset)
    width = min(ge, de) - max(gw, dw)
    height = min(gn, dn) - max(gs, ds)
    if width <= 0 or height <= 0:
        return 0.0
    return (width * height) / ((ge - gw) * (gn - gs))


def percent(share: float) -> str:
    """A share (0..1) as a percentage that reads 0% or 100% only when it is exactly that ('0.16%', '<0.01%')."""
    if 0 < share < 1e-4:
        return "<0.01%"
    if 1 - 1e-4 < share < 1:
        return ">99.99%"
    return f"{share:.{0 if share in (0, 1) or 0.01 <= share <= 0.99 else 2}%}"


def resolution_in(grid: Grid, dataset) -> float:
    """The dataset's pixel size expressed in the grid's CRS units (approximate across CRSs)."""
    w, s, e, n = bounds_in(grid, dataset)
    return math.sqrt(((e - w) / dataset.width) * ((n - s) / dataset.height))


def coarse_ratio(grid: Grid, coarse_dataset, coarse_resolution: Optional[float]) -> int:
    """Whole number of fine pixels per coarse pixel, from an explicit size or the coarse raster's own."""
    size = coarse_resolution if coarse_resolution else resolution_in(grid, coarse_dataset)
    return max(1, int(round(size / grid.resolution)))
