"""Opening a run's rasters by role, checking them against each other, and aligning them to the fine grid.

Takes paths by role and the alignment options, not a whole fusion request, so fusion, training and the
checks share it. Everything read here is metadata plus a bounded sample of pixels.
"""
from __future__ import annotations

import math
import re
import threading
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from typing import Dict, Iterable, Iterator, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import torch

from .. import roles
from ..core.progress import Cancel, Progress, check_cancel, silent
from ..core.tiling import Tile
from ..errors import StfError
from ..methods.contract import TileBatch
from ..raster.grid import Grid, coarse_ratio, no_crs, percent, resolution_in
from ..raster.grid_view import data_bands
from ..raster.open import check_covers, open_on_grid, open_raster, reopen
from ..raster.reader import AlignedRaster, Scale, bands_word
from ..raster.windows import block_windows
from ..raster.writer import Encoding
from .registration import estimate_offset

BLOCK_SIDE = 512
"""About how many fine pixels a side the scene's passes (`read_blocks`: surveys, scene statistics) read at once."""


@dataclass(frozen=True)
class Alignment:
    """How inputs are brought onto the fine grid: band mapping, units, coarse pixel size and co-registration."""

    bands: Optional[Tuple[int, ...]] = None
    """1-based coarse bands, in the order of the fine reference's bands."""
    scales: Mapping[str, Scale] = field(default_factory=dict)
    """Per-role factor, or (scale, offset), from stored values to reflectance, overriding metadata and defaults."""
    coarse_resolution: Optional[float] = None
    """Effective coarse pixel size in fine-grid units, for coarse data already resampled to a finer grid."""
    resampling: str = "bilinear"
    """Resampling for coarse inputs brought up to the fine grid."""
    coarse_shift: Optional[Tuple[float, float]] = None
    """Known misregistration of the coarse rasters, in fine pixels east and south."""
    register: bool = False
    """Estimate coarse_shift by correlating coarse and fine content (ignored when coarse_shift is set)."""


@dataclass
class AlignedInputs:
    grid: Grid
    readers: Dict[str, AlignedRaster]
    fine: Encoding
    """How the output stores values: the fine reference's dtype, scale, nodata and band names."""
    ratio: int
    fine_std: Tuple[float, ...]
    coarse_shift: Tuple[float, float] = (0.0, 0.0)
    warnings: List[str] = field(default_factory=list)

    @property
    def bands(self) -> int:
        return self.readers[roles.FINE_REFERENCE].count

    def read_blocks(self, ratio: int, device, side: int = BLOCK_SIDE, left_out: Iterable[str] = ()
                    ) -> Iterator[TileBatch]:
        """The whole scene in windows whose edges fall on the coarse pixels' block grid, one per batch, no halo;
        the `left_out` roles are not read (None in the batch), and `valid` is where every role read holds data."""
        for window in block_windows(self.grid.height, self.grid.width, ratio, side):
            arrays, valid = dict.fromkeys(left_out), None
            for role, reader in self.readers.items():
                if role in arrays:
                    continue
                data, mask = reader.read(window)
                arrays[role] = torch.from_numpy(data)[None].to(device)
                valid = mask if valid is None else valid & mask
            origin = ((int(window.row_off), int(window.col_off)),)
            yield TileBatch(valid=torch.from_numpy(valid)[None, None].to(device), origins=origin, **arrays)

    def block_count(self, ratio: int, side: int = BLOCK_SIDE) -> int:
        """How many batches `read_blocks` yields."""
        return sum(1 for _ in block_windows(self.grid.height, self.grid.width, ratio, side))

    def reopened(self, stack: ExitStack, wanted: Optional[Iterable[str]] = None) -> "AlignedInputs":
        """These inputs on dataset handles of their own, for another reader thread; closed with the stack. With
        `wanted`, only those roles (the others are left out, not shared between threads)."""
        keep = self.readers if wanted is None else set(wanted)
        return replace(self, readers={role: reopen(reader, stack) for role, reader in self.readers.items()
                                      if role in keep})

    def read_batch(self, group: Sequence[Tile], halo: int, device) -> TileBatch:
        """Every role's haloed window for each tile, stacked into tensors on the device."""
        tensors, valid = self.read_roles(group, halo, device, self.readers)
        return TileBatch(valid=valid, origins=origins(group, halo), **tensors)

    def read_roles(self, group: Sequence[Tile], halo: int, device, wanted: Iterable[str]
                   ) -> Tuple[Dict[str, torch.Tensor], torch.Tensor]:
        """The `wanted` roles' haloed windows for each tile as (B, C, H, W) tensors, and where all of them
        hold data, (B, 1, H, W)."""
        arrays: Dict[str, list] = {role: [] for role in wanted}
        valid = []
        for tile in group:
            window = tile.read_window(halo)
            tile_valid = None
            for role in arrays:
                data, mask = self.readers[role].read_padded(*window)
                arrays[role].append(data)
                tile_valid = mask if tile_valid is None else tile_valid & mask
            valid.append(tile_valid[None])
        tensors = {role: torch.from_numpy(np.stack(stack)).to(device) for role, stack in arrays.items()}
        return tensors, torch.from_numpy(np.stack(valid)).to(device)


class PerThread:
    """Inputs for `threads` reader threads, each with dataset handles of its own (GDAL handles are not shared
    between threads): the originals and copies of them (anything with `reopened(stack)`), all opened and closed
    on the calling thread."""

    def __init__(self, inputs, threads: int):
        self._stack = ExitStack()
        try:
            self._free = [inputs] + [inputs.reopened(self._stack) for _ in range(threads - 1)]
        except BaseException:
            self._stack.close()
            raise
        self._local, self._lock = threading.local(), threading.Lock()

    def own(self):
        """The calling thread's inputs."""
        mine = getattr(self._local, "inputs", None)
        if mine is None:
            with self._lock:
                mine = self._local.inputs = self._free.pop()
        return mine

    def __enter__(self) -> "PerThread":
        return self

    def __exit__(self, *exc) -> None:
        self._stack.close()


def origins(group: Sequence[Tile], halo: int) -> Tuple[Tuple[int, int], ...]:
    """(row, col) of each tile's haloed window on the fine grid."""
    return tuple(tile.read_window(halo)[:2] for tile in group)


def open_inputs(
    paths: Mapping[str, str],
    alignment: Alignment,
    stack: ExitStack,
    progress: Progress = silent,
    cancel: Optional[Cancel] = None,
) -> AlignedInputs:
    """Open every given role on the fine reference's grid; StfError for anything a user must fix."""
    progress(0.0, "opening the inputs")
    for role in (roles.COARSE_TARGET, roles.FINE_REFERENCE):
        if not paths.get(role):
            raise StfError(f"a {roles.LABELS[role]} is needed")
    datasets = {role: stack.enter_context(open_raster(path, roles.LABELS[role])) for role, path in paths.items()}
    fine = datasets[roles.FINE_REFERENCE]
    if fine.crs is None:
        raise StfError(no_crs(roles.LABELS[roles.FINE_REFERENCE], fine.name))
    grid = Grid.of(fine)
    warnings: List[str] = []
    if grid.crs.is_geographic:
        warnings.append(
            "the fine reference is in a geographic CRS (degrees); distances and pixel ratios are approximate"
        )
    for role, dataset in datasets.items():
        covered = check_covers(grid, dataset, roles.LABELS[role])
        if covered < 0.999:
            warnings.append(_coverage_note(roles.LABELS[role], covered, dataset.name))

    band_map = _band_map(alignment, datasets)
    warnings.extend(_band_notes(band_map, datasets))
    coarse = datasets[roles.COARSE_TARGET]
    if alignment.coarse_resolution is not None:
        _check_coarse_resolution(alignment.coarse_resolution, grid)
    else:
        _check_coarse_pixel(grid, coarse, warnings)
    ratio = coarse_ratio(grid, coarse, alignment.coarse_resolution)

    def aligned(role: str, shift: Tuple[float, float] = (0.0, 0.0)) -> AlignedRaster:
        upsampling = "nearest" if role in roles.FINE_ROLES else alignment.resampling
        return open_on_grid(
            stack, paths[role], roles.LABELS[role], grid, alignment.scales.get(role), upsampling,
            band_map.get(role), shift, dataset=datasets[role],
        )

    def placed(role: str, shift: Tuple[float, float]) -> AlignedRaster:
        """The role on the grid, a coarse one moved by `shift` (fine pixels east and south)."""
        if role in roles.COARSE_ROLES:
            return aligned(role, (shift[0] * grid.transform.a, shift[1] * grid.transform.e))
        return aligned(role)

    known = _known_shift(alignment)  # the coarse rasters open where they belong at once when nothing is estimated
    readers: Dict[str, AlignedRaster] = {role: placed(role, known or (0.0, 0.0)) for role in datasets}
    second = readers.get(roles.FINE_REFERENCE_2)
    if second is not None and second.count != readers[roles.FINE_REFERENCE].count:
        raise StfError(f"the second fine reference has {second.count} bands but the fine reference has "
                       f"{readers[roles.FINE_REFERENCE].count}")
    check_cancel(cancel)
    shift = known
    if shift is None:
        progress(0.0, "co-registering the coarse rasters")
        shift = _estimated_shift(readers, ratio)
        if shift != (0.0, 0.0):
            readers.update({role: placed(role, shift) for role in roles.COARSE_ROLES if role in readers})
    progress(0.0, "sampling the inputs")
    fine_std = _check_samples(readers, warnings, cancel, alignment.coarse_shift)
    encoding = Encoding(
        dtype=fine.dtypes[0],
        nodata=fine.nodata,
        units=readers[roles.FINE_REFERENCE].units.of_bands(readers[roles.FINE_REFERENCE].bands),
        descriptions=tuple(fine.descriptions[band - 1] for band in readers[roles.FINE_REFERENCE].bands),
    )
    return AlignedInputs(grid, readers, encoding, ratio, fine_std, shift, warnings)


def scene_shape(paths: Mapping[str, str], coarse_resolution: Optional[float]) -> Tuple[int, int, int]:
    """(height, width, coarse/fine ratio) of the scene of the fine reference and coarse target in `paths`, from
    their metadata alone: for checks before a run, which `open_inputs` (it samples pixels) would make slower."""
    with ExitStack() as stack:
        fine, coarse = (stack.enter_context(open_raster(paths[role], roles.LABELS[role]))
                        for role in (roles.FINE_REFERENCE, roles.COARSE_TARGET))
        grid = Grid.of(fine)
        check_covers(grid, coarse, roles.LABELS[roles.COARSE_TARGET])
        if coarse_resolution is not None:
            _check_coarse_resolution(coarse_resolution, grid)
        return grid.height, grid.width, coarse_ratio(grid, coarse, coarse_resolution)


SCANT_COVER = 0.01
"""Share of the fine reference below which an input's coverage means an output of almost nothing but nodata."""


def _coverage_note(label: str, covered: float, name: str) -> str:
    """The warning for an input that covers only part of the fine reference: plainer when it covers almost none."""
    if covered < SCANT_COVER:
        return (f"{label} covers only {percent(covered)} of the fine reference, so the output will be almost all "
                f"nodata; the inputs probably do not match (another place, or a wrong georeference): {name}")
    return f"{label} covers {percent(covered)} of the fine reference; the rest is written as nodata"


def _check_coarse_resolution(size: float, grid: Grid) -> None:
    """A real coarse pixel size must lie between the fine pixel size and the raster's extent, in grid units."""
    units = "degrees" if grid.crs.is_geographic else (grid.crs.linear_units or "grid units")
    if size < grid.resolution * 0.99:
        raise StfError(
            f"the real coarse pixel size (--coarse-res) {size:g} is smaller than the fine pixel size "
            f"{grid.resolution:g}; give it in the fine grid's units ({units})"
        )
    if size > grid.resolution * max(grid.width, grid.height):
        raise StfError(
            f"the real coarse pixel size (--coarse-res) {size:g} is larger than the whole fine raster "
            f"({grid.width}×{grid.height} pixels of {grid.resolution:g}); give it in the fine grid's units ({units})"
        )


def _check_coarse_pixel(grid: Grid, coarse, warnings: List[str]) -> None:
    """The coarse target's own pixels are coarser than the fine reference's: finer ones mean the two images were
    picked the wrong way round; the same size, a coarse image resampled to the fine grid (worth a warning)."""
    size = resolution_in(grid, coarse)
    if size < grid.resolution / 1.5:
        raise StfError(
            f"the {roles.LABELS[roles.COARSE_TARGET]} has smaller pixels ({size:g}) than the "
            f"{roles.LABELS[roles.FINE_REFERENCE]} ({grid.resolution:g}): the fine and coarse images look swapped "
            f"({coarse.name} is the finer one); give the finer image as the fine reference, or, if the coarse "
            f"image was resampled from a coarser sensor, its real pixel size (--coarse-res)"
        )
    if size < grid.resolution * 1.5:
        warnings.append(
            "the coarse target has the fine reference's pixel size; if it was resampled from a coarser "
            "sensor, give its real pixel size (--coarse-res) for the simulated reference and error maps"
        )


def _known_shift(alignment: Alignment) -> Optional[Tuple[float, float]]:
    """The user's (or an earlier run's) shift, none when not registering, or None when it must be estimated."""
    if alignment.coarse_shift is not None:
        return (float(alignment.coarse_shift[0]), float(alignment.coarse_shift[1]))
    return None if alignment.register else (0.0, 0.0)


def _estimated_shift(readers: Dict[str, AlignedRaster], ratio: int) -> Tuple[float, float]:
    """The shift that lines the coarse raster of the fine reference's date up with the fine reference."""
    same_date = readers.get(roles.COARSE_REFERENCE, readers[roles.COARSE_TARGET])
    dx, dy = estimate_offset(readers[roles.FINE_REFERENCE], same_date, ratio, search=max(8, 2 * ratio))
    return (round(dx, 2), round(dy, 2))


def _band_map(alignment: Alignment, datasets) -> Dict[str, List[int]]:
    """Coarse bands to read so they match the fine reference band for band; pan keeps band 1."""
    fine_count = len(data_bands(datasets[roles.FINE_REFERENCE]))
    mapping: Dict[str, List[int]] = {role: data_bands(datasets[role]) for role in roles.FINE_ROLES if role in datasets}
    for role in roles.COARSE_ROLES:
        if role not in datasets:
            continue
        bands = list(alignment.bands) if alignment.bands else data_bands(datasets[role])
        if len(bands) != fine_count:
            label, example = roles.LABELS[role], ",".join(map(str, range(1, fine_count + 1)))
            said = (f"--bands {','.join(map(str, bands))} picks {len(bands)} {bands_word(len(bands))} of the {label}"
                    if alignment.bands else f"the {label} has {len(bands)} {bands_word(len(bands))}")
            available = len(data_bands(datasets[role]))
            way_out = (f"pick and order coarse bands with --bands (e.g. --bands {example})" if available >= fine_count
                       else f"give a {label} with the fine reference's {fine_count} bands, or fuse a copy of the "
                            f"fine reference with only the {available} {bands_word(available)} the {label} has")
            raise StfError(f"band mismatch: {said} but the fine reference has {fine_count}; {way_out}: "
                           f"{datasets[role].name}")
        mapping[role] = bands
    if roles.PAN in datasets:
        mapping[roles.PAN] = [1]
    return mapping


def _band_notes(mapping: Dict[str, List[int]], datasets) -> List[str]:
    """Warnings about the bands `_band_map` picked: coarse bands whose descriptions show another order than the
    fine reference's, and a pan image of several bands (only its first is read)."""
    orders = (_band_order_note(role, mapping, datasets) for role in roles.COARSE_ROLES if role in datasets)
    notes = [note for note in orders if note][:1]  # --bands orders every coarse raster alike: one line says it
    pan = datasets.get(roles.PAN)
    if pan is not None and len(data_bands(pan)) > 1:
        notes.append(f"the pan image has {len(data_bands(pan))} bands; only band 1 is used: {pan.name}")
    return notes


NUMBERED = re.compile(r"(band)?[\s_-]*\d+", re.IGNORECASE)
"""A band description that only numbers the band ('Band 3', '3'): no name to match bands by."""


def _band_names(dataset, bands: Sequence[int]) -> Optional[List[str]]:
    """The bands' descriptions, trimmed, when each names its band (none blank, only a number, or twice)."""
    names = [(dataset.descriptions[band - 1] or "").strip() for band in bands]
    keys = {name.lower() for name in names}
    named = all(name and not NUMBERED.fullmatch(name) for name in names) and len(keys) == len(names)
    return names if named else None


def _band_order_note(role: str, mapping: Dict[str, List[int]], datasets) -> Optional[str]:
    """A warning naming the pairs fused when the coarse raster of `role` describes the fine reference's bands in
    another order than the one read (MODIS red, NIR against Landsat NIR, red), with the --bands that reorders them;
    None when either raster leaves a band unnamed or the coarse one lacks a fine band's name."""
    coarse, fine_bands = datasets[role], mapping[roles.FINE_REFERENCE]
    fine_names = _band_names(datasets[roles.FINE_REFERENCE], fine_bands)
    coarse_names = _band_names(coarse, data_bands(coarse))
    if not fine_names or not coarse_names:
        return None
    by_name = {name.lower(): band for name, band in zip(coarse_names, data_bands(coarse))}
    wanted = [by_name.get(name.lower()) for name in fine_names]
    if None in wanted or wanted == mapping[role]:
        return None
    described = dict(zip(data_bands(coarse), coarse_names))
    label = roles.LABELS[role]
    pairs = [f"the {label}'s band {band} '{described[band]}' is fused with the fine reference's band {fine} '{name}'"
             for band, fine, name, right in zip(mapping[role], fine_bands, fine_names, wanted) if band != right]
    return f"{'; '.join(pairs)}; reorder with --bands {','.join(map(str, wanted))}: {coarse.name}"


def _check_samples(readers: Dict[str, AlignedRaster], warnings: List[str], cancel,
                   shift: Optional[Tuple[float, float]]) -> Tuple[float, ...]:
    """Reject all-nodata inputs, warn on unit mismatches and on integers that the assumed ×10000 makes no reflectance
    (the pan band, normalised on its own, may be in any units); return the fine reference's per-band std. `shift`: the
    coarse rasters' given shift, named when a coarse raster holds nothing where it puts it."""
    typical = {}
    fine_std: Tuple[float, ...] = ()
    for role, reader in readers.items():
        check_cancel(cancel)
        data, valid = reader.sample()
        if not valid.any():
            raise StfError(_why_empty(role, reader, shift))
        values = data[:, valid]
        typical[role] = typical_level(values)
        if role != roles.PAN and reader.units.assumed and (note := _beyond_reflectance(role, reader, values)):
            warnings.append(note)
        if role == roles.FINE_REFERENCE:
            fine_std = tuple(float(v) for v in values.std(axis=1))
    fine_level = typical[roles.FINE_REFERENCE]
    for role, level in typical.items():
        if role != roles.FINE_REFERENCE and orders_apart(level, fine_level):
            warnings.append(
                f"{readers[role].label} values (median {level:.4g}) differ from the fine reference's "
                f"({fine_level:.4g}) by more than an order of magnitude; {UNITS_ADVICE}"
            )
    return fine_std


def _why_empty(role: str, reader: AlignedRaster, shift: Optional[Tuple[float, float]]) -> str:
    """Why an input holds no valid pixel over the fine reference: bands of nodata only (any band's nodata makes a
    pixel nodata), or a given coarse shift that may have moved it away; and what to change."""
    empty, label, name = reader.empty_bands(), reader.label, reader.dataset.name
    if empty and len(empty) < reader.count:
        which = f"{bands_word(len(empty))} {', '.join(map(str, empty))} of the {label} "
        which += "holds" if len(empty) == 1 else "hold"
        way_out = ("leave it out with --bands (and the fine reference's matching band)" if role in roles.COARSE_ROLES
                   else f"give a {label} with data in every band it has")
        return (f"{which} only nodata over the fine reference's extent, so no pixel has data in every band: "
                f"{way_out}: {name}")
    moved = ""
    if role in roles.COARSE_ROLES and shift and any(shift):
        moved = (f"; the coarse shift given (--coarse-shift {shift[0]:g},{shift[1]:g}) may have moved it off the "
                 f"fine reference")
    return f"{label} holds no valid pixels over the fine reference's extent{moved}: {name}"


def _beyond_reflectance(role: str, reader: AlignedRaster, values: np.ndarray) -> Optional[str]:
    """Why an integer raster read at the assumed ×10000 (`values`, a sample) is no reflectance: most values above 1,
    or hardly any below C2_LOWEST (a visible band's dark pixels are); None when it may be. With the scales of Landsat
    Collection 2 Level-2, which the USGS ships with no scale in its metadata: surface reflectance DN × 2.75e-5 − 0.2
    (never below 0.7273 read as ×10000), surface temperature DN × 0.00341802 + 149 kelvin (above C2_HIGHEST unless
    colder than 298 K)."""
    low, median = (float(v) for v in np.percentile(values, [2, 50]))
    if median <= 1 and low < C2_LOWEST:
        return None
    name, path = roles.SCALE_NAMES[role], reader.dataset.name
    said = (f"the {reader.label} holds integers with no scale in its metadata, so it is read as reflectance ×10000, "
            f"but its values read so are too high for reflectance (median {median:.3g}, 2nd percentile {low:.3g})")
    if median > C2_HIGHEST:
        return (f"{said}: if it is Landsat Collection 2 Level-2 surface temperature, set --scale "
                f"{name}=0.00341802:149 (kelvin), else its own scale: {path}")
    return (f"{said}: if it is Landsat Collection 2 Level-2, set --scale {name}=2.75e-5:-0.2 for its surface "
            f"reflectance or {name}=0.00341802:149 for its surface temperature (kelvin), else its own scale: {path}")


C2_LOWEST, C2_HIGHEST = 0.7, 4.3636
"""Collection 2 Level-2 surface reflectance read as ×10000: 0.7273 for a reflectance of 0 (a few darker pixels
aside), 4.3636 for 1."""


UNITS_ADVICE = "check units and set --scale"
"""How a warning about an input's units ends (`is_units_warning`)."""


def is_units_warning(message: str) -> bool:
    """Whether a run's warning is the units check's, for a caller that has given it once already."""
    return message.endswith(UNITS_ADVICE)


def typical_level(values: np.ndarray) -> Optional[float]:
    """The median magnitude of an input's non-zero valid values: the level a unit mismatch between inputs shows in.
    A unit factor scales every non-zero value alike, while zeros (water in a near-infrared band, dark pixels, a 0
    fill) would pull the median to 0; None when every value is 0, which tells nothing about units."""
    magnitudes = np.abs(values[values != 0])
    return float(np.median(magnitudes)) if magnitudes.size else None


def orders_apart(level: Optional[float], reference: Optional[float]) -> int:
    """The power of ten between two inputs' typical levels when they differ by more than an order of magnitude
    (4 for values ×10000 against reflectance), else 0: they are then taken to share their units, as they are when
    either level is None (an input of zeros only)."""
    if level is None or reference is None:
        return 0
    ratio = level / reference
    return 0 if 0.05 < ratio < 20 else round(math.log10(ratio))
