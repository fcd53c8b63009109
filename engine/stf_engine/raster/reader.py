"""One input raster brought onto the fine grid and read by windows as float32 reflectance plus a mask."""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
from rasterio.enums import Resampling
from rasterio.windows import Window

from ..core.options import finite_number, parse_number
from ..core.tiling import clip
from ..errors import StfError
from .grid import Grid
from .grid_view import GridView, data_bands

DEFAULT_INTEGER_SCALE = 1e-4
"""Integer rasters are taken as reflectance ×10000 unless their metadata or the user says otherwise."""
Scale = Union[float, Tuple[float, float]]
"""A user's conversion to reflectance: a factor, or (scale, offset) as Landsat C2 L2's (2.75e-5, -0.2)."""


@dataclass(frozen=True)
class Units:
    """value_reflectance = stored * scale + offset; tuples hold one value per band of the raster, in band order, for
    rasters whose bands are scaled differently."""

    scale: Union[float, Tuple[float, ...]]
    offset: Union[float, Tuple[float, ...]] = 0.0
    assumed: bool = False
    """Whether neither the user nor the raster's metadata gave them (integers taken as reflectance ×10000)."""

    @property
    def identity(self) -> bool:
        """Whether stored values already are reflectance (scale 1, offset 0 on every band)."""
        return bool(np.all(np.asarray(self.scale) == 1.0) and not np.any(self.offset))

    def of_bands(self, bands: Sequence[int]) -> "Units":
        """The units of the raster's 1-based `bands`, in that order (the same units when they are not per band)."""

        def pick(value):
            return tuple(value[b - 1] for b in bands) if isinstance(value, tuple) else value

        return Units(pick(self.scale), pick(self.offset), self.assumed)

    def per_band(self, count: int) -> Tuple[Tuple[float, ...], Tuple[float, ...]]:
        """(scales, offsets) of `count` bands, as GDAL band metadata holds them."""

        def spread(value):
            return tuple(value) if isinstance(value, tuple) else (float(value),) * count

        return spread(self.scale), spread(self.offset)

    def to_reflectance(self, stored: np.ndarray) -> np.ndarray:
        """Stored values, (C, h, w) when the units are per band, as float32 reflectance."""
        out = stored.astype(np.float32, copy=False) * _by_band(self.scale)
        if np.any(self.offset):
            out += _by_band(self.offset)
        return out

    def to_stored(self, reflectance: np.ndarray) -> np.ndarray:
        return (reflectance - _by_band(self.offset)) / _by_band(self.scale)


def _by_band(value: Union[float, Tuple[float, ...]]) -> np.ndarray:
    """A scale or offset as float32 that broadcasts over (C, h, w), one value per band when it is a tuple."""
    array = np.asarray(value, dtype=np.float32)
    return array.reshape(-1, 1, 1) if array.ndim else array


def units_of(dataset, override: Optional[Scale] = None) -> Units:
    """Scale (and offset) from the user, else from the raster's scale/offset metadata (per band when its bands
    differ), else by dtype (integer → 1e-4)."""
    if isinstance(override, (tuple, list)):
        scale, offset = override
        return Units(float(scale), float(offset))
    if override is not None:
        return Units(float(override))
    scales = tuple(1.0 if s is None else float(s) for s in dataset.scales or (1.0,) * dataset.count)
    offsets = tuple(0.0 if o is None else float(o) for o in dataset.offsets or (0.0,) * dataset.count)
    if any(s != 1.0 for s in scales) or any(o != 0.0 for o in offsets):
        return Units(_one_or_all(scales), _one_or_all(offsets))
    if np.issubdtype(np.dtype(dataset.dtypes[0]), np.integer):
        return Units(DEFAULT_INTEGER_SCALE, assumed=True)
    return Units(1.0)


def _one_or_all(values: Tuple[float, ...]) -> Union[float, Tuple[float, ...]]:
    """The value every band shares, else the per-band tuple."""
    return values[0] if len(set(values)) == 1 else values


def parse_scale(text: str, what: str) -> Scale:
    """'1e-4' → 1e-4 and '2.75e-5:-0.2' → (2.75e-5, -0.2); StfError starting with `what` for anything else."""
    parts = text.split(":")
    if len(parts) > 2:
        raise StfError(f"{what}: expected one or two numbers, got '{text}'")
    numbers = [parse_number(part.strip(), what) for part in parts]
    value = numbers[0] if len(numbers) == 1 else (numbers[0], numbers[1])
    check_scale(value, what, f"'{text}'")
    return value


def check_scale(value: object, what: str, given: str = "") -> None:
    """Refuse a scale unless it is a non-zero finite factor, or (scale, offset) of a non-zero finite scale and a
    finite offset: NaN, infinity or zero would turn every value into nodata or into one number."""
    parts = tuple(value) if isinstance(value, (tuple, list)) else (value,)
    if not (len(parts) in (1, 2) and all(finite_number(part) for part in parts) and parts[0] != 0):
        raise StfError(f"{what}: the scale must be a non-zero finite number and the offset finite, got "
                       f"{given or repr(value)}")


def check_scales(scales: Mapping[str, object], known: Sequence[str]) -> None:
    """A request's scales: a mapping from the `known` roles, each value as `check_scale` takes it."""
    if not isinstance(scales, Mapping):
        raise StfError(f"scales are a mapping by role, e.g. {{'{known[0]}': 1e-4}}; got {scales!r}")
    for role, value in scales.items():
        if role not in known:
            raise StfError(f"scales: unknown role '{role}'; use one of {', '.join(known)}")
        check_scale(value, f"--scale {role}")


def bands_word(count: int) -> str:
    """'band' or 'bands', as a message names `count` of them."""
    return "band" if count == 1 else "bands"


class AlignedRaster:
    """Reads any window of the fine grid from one input, warping on the fly when its grid differs.

    Windows may reach outside the raster: those pixels are filled by reflection so that a tile's halo
    sees the same values a whole-raster run would.
    """

    def __init__(
        self,
        dataset,
        label: str,
        grid: Grid,
        units: Units,
        bands: Optional[Sequence[int]] = None,
        resampling: Resampling = Resampling.bilinear,
        shift: Tuple[float, float] = (0.0, 0.0),
    ):
        """`units`: of the dataset's bands (those in `bands` are applied; by default every band but an alpha band,
        which is a mask). `shift` (fine-grid map units, x then y) moves this input's content on the grid to correct
        a misregistration."""
        self.label = label
        self.grid = grid
        self.units = units
        self.dataset = dataset
        self.resampling, self.shift = resampling, shift
        self.bands = list(bands) if bands else data_bands(dataset)
        bad = [b for b in self.bands if not 1 <= b <= dataset.count]
        if bad:
            raise StfError(
                f"{label} has {dataset.count} bands, so --bands {','.join(map(str, self.bands))} asks for "
                f"{bands_word(len(bad))} {', '.join(map(str, bad))}, which it does not have; pick from bands 1 to "
                f"{dataset.count}: {dataset.name}"
            )
        self._units = units.of_bands(self.bands)
        self.view = GridView(dataset, grid, resampling, label, shift)
        self.nodata = dataset.nodata

    @property
    def count(self) -> int:
        return len(self.bands)

    def close(self) -> None:
        """Close the warped views, if any; the dataset stays with whoever opened it."""
        self.view.close()

    def read(self, window: Window) -> Tuple[np.ndarray, np.ndarray]:
        """(data (C, h, w) float32 reflectance, valid (h, w) bool) inside the grid."""
        stored, valid = self._stored(window=window)
        data = self._units.to_reflectance(stored)
        bad = valid & ~np.isfinite(data).all(axis=0)
        if bad.any():
            row, col = (int(offset + at) for offset, at in zip((window.row_off, window.col_off), np.argwhere(bad)[0]))
            source_row, source_col = self.view.source_pixel(row, col, self.bands)
            where = (f"row {source_row}, column {source_col}" if (source_row, source_col) == (row, col) else
                     f"row {source_row}, column {source_col} of the file, row {row}, column {col} of the fine grid")
            raise StfError(f"{self.label} holds NaN or infinite values that are not marked as nodata (the first at "
                           f"{where}; rows and columns count from 0); set its nodata value: {self.dataset.name}")
        data[:, ~valid] = 0.0
        return data, valid

    def _stored(self, **how) -> Tuple[np.ndarray, np.ndarray]:
        return self.view.read(self.bands, **how)

    def read_padded(self, row: int, col: int, height: int, width: int) -> Tuple[np.ndarray, np.ndarray]:
        """Like `read`, for a window that may extend past the grid's edges (reflect padding)."""
        inside = clip(row, col, height, width, self.grid.height, self.grid.width)
        data, valid = self.read(Window(inside.col, inside.row, inside.width, inside.height))
        if inside.padded:
            data = np.pad(data, ((0, 0),) + inside.pads, mode="reflect")
            valid = np.pad(valid, inside.pads, mode="reflect")
        return data, valid

    def read_haloed(self, window: Window, halo: int) -> Tuple[np.ndarray, np.ndarray]:
        """The window with `halo` pixels of context around it; outside the raster is invalid (and zero)."""
        row, col = int(window.row_off) - halo, int(window.col_off) - halo
        inside = clip(row, col, int(window.height) + 2 * halo, int(window.width) + 2 * halo,
                      self.grid.height, self.grid.width)
        data, valid = self.read(Window(inside.col, inside.row, inside.width, inside.height))
        return np.pad(data, ((0, 0),) + inside.pads), np.pad(valid, inside.pads)

    def preview(self, max_side: int = 512) -> Tuple[np.ndarray, np.ndarray]:
        """A decimated read of the whole grid, for quick-look images in bounded memory."""
        step = max(1, -(-max(self.grid.width, self.grid.height) // max_side))
        shape = (max(1, self.grid.height // step), max(1, self.grid.width // step))
        return self._decode(*self._stored(out_shape=shape, resampling=Resampling.nearest))

    def sample(self, max_side: int = 512, per_axis: int = 4) -> Tuple[np.ndarray, np.ndarray]:
        """Pixels for statistics in bounded reads: the whole grid when it fits in max_side², else
        per_axis² windows spread evenly over it, max_side² pixels in all, side by side in one array."""
        parts = [self._decode(*self._stored(window=w)) for w in self._sample_windows(max_side, per_axis)]
        return np.concatenate([p[0] for p in parts], axis=2), np.concatenate([p[1] for p in parts], axis=1)

    def empty_bands(self, max_side: int = 512, per_axis: int = 4) -> List[int]:
        """The bands read (the dataset's numbers) that hold no data anywhere `sample` reads."""
        windows = self._sample_windows(max_side, per_axis)
        return [band for band in self.bands if not any(self.view.read([band], window=w)[1].any() for w in windows)]

    def _sample_windows(self, max_side: int, per_axis: int) -> List[Window]:
        """`sample`'s windows: the whole grid when it fits in max_side², else per_axis² windows spread over it."""
        grid = self.grid
        if max(grid.width, grid.height) <= max_side:
            return [Window(0, 0, grid.width, grid.height)]
        side_h, side_w = min(grid.height, max_side // per_axis), min(grid.width, max_side // per_axis)
        rows = np.linspace(0, grid.height - side_h, per_axis).astype(int)
        cols = np.linspace(0, grid.width - side_w, per_axis).astype(int)
        return [Window(int(c), int(r), side_w, side_h) for r in rows for c in cols]

    def _decode(self, stored: np.ndarray, valid: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        data = self._units.to_reflectance(stored)
        return data, valid & np.isfinite(data).all(axis=0)
