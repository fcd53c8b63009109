"""A raster as seen on another grid, read by windows: its stored values resampled, and which pixels hold data."""
from __future__ import annotations

import warnings
from typing import List, Optional, Sequence, Tuple

import numpy as np
import rasterio
from rasterio.enums import ColorInterp, Resampling
from rasterio.errors import NodataShadowWarning
from rasterio.transform import Affine
from rasterio.vrt import WarpedVRT
from rasterio.windows import Window
from rasterio.warp import transform

from ..errors import StfError
from .gdal_log import gdal_errors
from .grid import Grid


# rasterio warns that a nodata value shadows the alpha band when the masks of such a raster are read; a view applies
# the alpha band itself. A filter set once (catch_warnings is not thread-safe, and reader threads read views).
warnings.filterwarnings("ignore", category=NodataShadowWarning)


def alpha_band(dataset) -> Optional[int]:
    """The dataset's alpha band (1-based), whose zeros mark pixels without data, or None."""
    return next((band for band, use in enumerate(dataset.colorinterp, 1) if use == ColorInterp.alpha), None)


def data_bands(dataset) -> List[int]:
    """The dataset's bands that hold values (1-based): all but its alpha band, which is a mask."""
    alpha = alpha_band(dataset)
    return [band for band in range(1, dataset.count + 1) if band != alpha]


SPREAD = 2
"""How far (the file's pixels) a resampling kernel carries a value onto the grid: bilinear 1, cubic 2."""


class GridView:
    """`dataset` on `grid`, displaced by minus `shift` (fine-grid map units, so a shift means the same in any source
    CRS); the dataset itself when it lies on the grid unshifted, else a warped view of it.

    Values are resampled with `resampling`, each band from its own valid pixels. A pixel is valid where its bands
    hold data and an alpha band (if any) is above zero; a warped view adds an alpha band to mark pixels outside the
    source or under its per-dataset mask when nothing else would. GDAL's warper takes a pixel as data when any of
    its bands does (or the alpha band says so): for a raster of several bands with a nodata value, which pixels hold
    data is therefore read from a nearest-neighbour view, so one band's nodata is nodata on the grid exactly where
    it is on the dataset's own pixels, and is never blended into its neighbours.
    """

    def __init__(self, dataset, grid: Grid, resampling: Resampling, label: str,
                 shift: Tuple[float, float] = (0.0, 0.0)):
        self.dataset, self.label = dataset, label
        alpha = alpha_band(dataset)
        if grid.same_as(dataset) and shift == (0.0, 0.0):
            self._values = self._masks = dataset
            self._alpha = alpha
            return
        if len({"nan" if value != value else value for value in dataset.nodatavals}) > 1:  # NaN equals no NaN
            shown = ", ".join("none" if value is None else f"{value:g}" for value in dataset.nodatavals)
            raise StfError(f"{label}: its bands have different nodata values ({shown}), which GDAL cannot carry onto "
                           f"the fine grid; give every band one nodata value (e.g. gdal_translate -a_nodata VALUE): "
                           f"{dataset.name}")
        on_grid = dict(crs=grid.crs, transform=Affine.translation(-shift[0], -shift[1]) * grid.transform,
                       width=grid.width, height=grid.height, UNIFIED_SRC_NODATA="NO")
        add_alpha = dataset.nodata is None and alpha is None
        self._values = self._masks = WarpedVRT(dataset, resampling=resampling, add_alpha=add_alpha, **on_grid)
        self._alpha = dataset.count + 1 if add_alpha else alpha
        if dataset.nodata is not None and dataset.count > 1 and resampling != Resampling.nearest:
            self._masks = WarpedVRT(dataset, resampling=Resampling.nearest, **on_grid)

    def source_pixel(self, row: int, col: int, bands: Sequence[int]) -> Tuple[int, int]:
        """(row, col) in the dataset's own pixels of the first non-finite value of `bands` near the grid pixel
        (row, col) of this view, a non-finite value having spread from there: where a user finds it in the file (a
        warped view moves it by the shift, the CRS and the pixel size, and resampling spreads it to neighbours)."""
        if self._values is self.dataset:
            return row, col
        x, y = self._values.transform * (col + 0.5, row + 0.5)
        if self._values.crs != self.dataset.crs:
            xs, ys = transform(self._values.crs, self.dataset.crs, [x], [y])
            x, y = xs[0], ys[0]
        source_col, source_row = (int(at // 1) for at in ~self.dataset.transform * (x, y))
        top, left = max(source_row - SPREAD, 0), max(source_col - SPREAD, 0)
        near = self.dataset.read(list(bands), window=Window(left, top, 2 * SPREAD + 1, 2 * SPREAD + 1),
                                 boundless=False)
        found = np.argwhere(~np.isfinite(near).all(axis=0))
        return (top + int(found[0][0]), left + int(found[0][1])) if len(found) else (source_row, source_col)

    def close(self) -> None:
        """Close the warped views, if any; the dataset stays with whoever opened it."""
        for view in {self._values, self._masks} - {self.dataset}:
            view.close()

    def read(self, bands: Sequence[int], **how) -> Tuple[np.ndarray, np.ndarray]:
        """(stored values (C, h, w) of the 1-based `bands`, (h, w) where all of them hold data); `how` is rasterio's
        window or out_shape and resampling. A read error or a damaged block is an StfError naming the file."""
        bands = list(bands)
        with gdal_errors() as errors:
            try:
                stored = self._values.read(bands, **how)
                valid = np.all(self._masks.read_masks(bands, **how) > 0, axis=0)
                if self._alpha:
                    valid &= self._masks.read(self._alpha, **how) > 0
            except (rasterio.errors.RasterioError, OSError) as exc:
                errors.append(str(exc))
        if errors:
            raise StfError(f"{self.label}: the file is damaged ({errors[0][:160]}): {self.dataset.name}")
        return stored, valid
