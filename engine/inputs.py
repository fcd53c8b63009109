"""Opening a request's inputs, checking them against each other, and aligning them to the fine grid."""
from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from rasterio.enums import Resampling

from . import roles
from .errors import StfError
from .grid import Grid, coarse_ratio, overlap_fraction, resolution_in
from .registration import estimate_offset
from .reader import AlignedRaster, Units, choose_resampling, open_raster, units_of
from .registry import MethodSpec, TileBatch
from .request import FusionRequest
from .tiling import Tile


@dataclass
class FineProfile:
    """What the output inherits from the fine reference."""

    dtype: str
    nodata: Optional[float]
    units: Units
    descriptions: Tuple[Optional[str], ...]


@dataclass
class AlignedInputs:
    grid: Grid
    readers: Dict[str, AlignedRaster]
    fine: FineProfile
    ratio: int
    fine_std: Tuple[float, ...]
    coarse_shift: Tuple[float, float] = (0.0, 0.0)
    warnings: List[str] = field(default_factory=list)

    def read_batch(self, group: Sequence[Tile], halo: int, device) -> TileBatch:
        """Every role's haloed window for each tile, stacked into tensors on the device."""
        arrays: Dict[str, list] = {role: [] for role in self.readers}
        valid = []
        for tile in group:
            window = tile.read_window(halo)
            tile_valid = None
            for role, reader in self.readers.items():
                data, mask = reader.read_padded(*window)
                arrays[role].append(data)
                tile_valid = mask if tile_valid is None else tile_valid & mask
            valid.append(tile_valid[None])
        tensors = {role: torch.from_numpy(np.stack(stack)).to(device) for role, stack in arrays.items()}
        return TileBatch(valid=torch.from_numpy(np.stack(valid)).to(device), **tensors)


def open_inputs(request: FusionRequest, spec: MethodSpec, stack: ExitStack) -> AlignedInputs:
    """Open every given input on the fine grid; raise StfError for anything a user must fix."""
    given = request.inputs()
    for role in spec.required:
        if role not in given:
            raise StfError(f"method '{spec.name}' needs a {roles.LABELS[role]}")
    warnings: List[str] = []
    for role in given:
        if not spec.accepts(role):
            warnings.append(f"method '{spec.name}' does not use the {roles.LABELS[role]}; it is ignored")

    datasets = {}
    for role, path in given.items():
        if spec.accepts(role):
            datasets[role] = stack.enter_context(open_raster(path, roles.LABELS[role]))
    fine = datasets[roles.FINE_REFERENCE]
    grid = Grid.of(fine)
    if grid.crs.is_geographic:
        warnings.append(
            "the fine reference is in a geographic CRS (degrees); distances and pixel ratios are approximate"
        )
    for role, dataset in datasets.items():
        if dataset.crs is None:
            raise StfError(f"{roles.LABELS[role]} has no coordinate reference system: {dataset.name}")
        covered = overlap_fraction(grid, dataset)
        if covered <= 0:
            raise StfError(f"{roles.LABELS[role]} does not overlap the fine reference: {dataset.name}")
        if covered < 0.999:
            warnings.append(
                f"{roles.LABELS[role]} covers {covered:.0%} of the fine reference; the rest is written as nodata"
            )

    band_map = _band_map(request, datasets)
    upsampling = request.resampling or spec.coarse_resampling
    coarse = datasets[roles.COARSE_TARGET]
    ratio = coarse_ratio(grid, coarse, request.coarse_resolution)

    def aligned(role: str, shift: Tuple[float, float] = (0.0, 0.0)) -> AlignedRaster:
        dataset = datasets[role]
        fine_role = role == roles.FINE_REFERENCE
        return AlignedRaster(
            dataset,
            roles.LABELS[role],
            grid,
            units_of(dataset, request.scales.get(role)),
            bands=band_map.get(role),
            resampling=Resampling.nearest if fine_role else choose_resampling(grid, dataset, upsampling),
            shift=shift,
        )

    readers: Dict[str, AlignedRaster] = {role: aligned(role) for role in datasets}
    shift = _coarse_shift(request, readers, ratio)
    if shift != (0.0, 0.0):
        map_shift = (shift[0] * grid.transform.a, shift[1] * grid.transform.e)
        for role in roles.COARSE_ROLES:
            if role in readers:
                readers[role].close()
                readers[role] = aligned(role, map_shift)
    for reader in readers.values():
        stack.callback(reader.close)
    if request.coarse_resolution is None and resolution_in(grid, coarse) < grid.resolution * 1.5:
        warnings.append(
            "the coarse target has the fine reference's pixel size; if it was resampled from a coarser "
            "sensor, give its real pixel size (--coarse-res) for the simulated reference and error maps"
        )
    fine_std = _check_previews(readers, warnings)
    profile = FineProfile(
        dtype=fine.dtypes[0],
        nodata=fine.nodata,
        units=readers[roles.FINE_REFERENCE].units,
        descriptions=tuple(fine.descriptions),
    )
    return AlignedInputs(grid, readers, profile, ratio, fine_std, shift, warnings)


def _coarse_shift(request: FusionRequest, readers: Dict[str, AlignedRaster], ratio: int) -> Tuple[float, float]:
    """The user's shift, or one estimated from the coarse raster of the fine reference's date if asked."""
    if request.coarse_shift is not None:
        return (float(request.coarse_shift[0]), float(request.coarse_shift[1]))
    if not request.register:
        return (0.0, 0.0)
    same_date = readers.get(roles.COARSE_REFERENCE, readers[roles.COARSE_TARGET])
    dx, dy = estimate_offset(readers[roles.FINE_REFERENCE], same_date, ratio, search=max(8, 2 * ratio))
    return (round(dx, 2), round(dy, 2))


def _band_map(request: FusionRequest, datasets) -> Dict[str, List[int]]:
    """Coarse bands to read so they match the fine reference band for band; pan keeps band 1."""
    fine_count = datasets[roles.FINE_REFERENCE].count
    mapping: Dict[str, List[int]] = {}
    for role in roles.COARSE_ROLES:
        if role not in datasets:
            continue
        count = datasets[role].count
        bands = list(request.bands) if request.bands else list(range(1, count + 1))
        if len(bands) != fine_count:
            how = f"bands {','.join(map(str, bands))} of it" if request.bands else f"{count} bands"
            raise StfError(
                f"band mismatch: the {roles.LABELS[role]} has {how} but the fine reference has {fine_count}; "
                f"pick and order coarse bands with --bands (e.g. --bands {','.join(map(str, range(1, fine_count + 1)))})"
            )
        mapping[role] = bands
    if roles.PAN in datasets:
        mapping[roles.PAN] = [1]
    return mapping


def _check_previews(readers: Dict[str, AlignedRaster], warnings: List[str]) -> Tuple[float, ...]:
    """Reject all-nodata inputs, warn on unit mismatches; return the fine reference's per-band std."""
    typical = {}
    fine_std: Tuple[float, ...] = ()
    for role, reader in readers.items():
        data, valid = reader.preview()
        if not valid.any():
            raise StfError(f"{reader.label} holds no valid pixels over the fine reference's extent")
        values = data[:, valid]
        typical[role] = float(np.median(np.abs(values))) or 1e-12
        if role == roles.FINE_REFERENCE:
            fine_std = tuple(float(v) for v in values.std(axis=1))
    fine_level = typical[roles.FINE_REFERENCE]
    for role, level in typical.items():
        if role != roles.FINE_REFERENCE and not 0.05 < level / fine_level < 20:
            warnings.append(
                f"{readers[role].label} values (median {level:.4g}) differ from the fine reference's "
                f"({fine_level:.4g}) by more than an order of magnitude; check units and set --scale"
            )
    return fine_std
