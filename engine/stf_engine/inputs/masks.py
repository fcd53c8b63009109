"""Quality masks (Landsat QA_PIXEL, Sentinel-2 SCL, MODIS state_1km, plain 0/1) as 'unusable' flags on the fine grid.

Codes are carried to the fine grid by nearest neighbour and decoded afterwards: averaging or interpolating
a bit field would make up codes whose bits mean nothing.
"""
from __future__ import annotations

from contextlib import ExitStack
from typing import Callable, Dict, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
from rasterio.enums import Resampling
from rasterio.windows import Window

from ..core.options import split_list
from ..errors import StfError
from ..raster.grid import Grid, percent
from ..raster.grid_view import GridView
from ..raster.open import check_covers, open_raster

MASK_ROLES = ("coarse", "fine")
"""Which inputs a mask applies to (`--mask fine=landsat-qa`)."""
MASK_RULES: Dict[str, str] = {
    "landsat-qa": "Landsat Collection 2 QA_PIXEL: fill, dilated cloud, cirrus, cloud, cloud shadow or snow bit set",
    "s2-scl": "Sentinel-2 L2A SCL: no data, saturated/defective, cloud shadow, cloud medium/high probability, "
    "thin cirrus or snow",
    "modis-state": "MOD09 state_1km: cloudy or mixed cloud state, cloud shadow or internal cloud flag set",
    "nonzero": "any value other than 0 (plain 0/1 or 0/255 masks)",
}
"""Rule name → what it marks unusable."""
DEFAULT_MASK_RULE = "nonzero"
"""The rule of a role's masks when the request names none (series fusion and series training alike)."""
FULL_COVER = 0.999
"""Share of the grid a mask must cover for its uncovered rest (counted as masked) to go unsaid."""

LANDSAT_QA_UNUSABLE = 0b111111
"""QA_PIXEL bits 0–5: fill, dilated cloud, cirrus, cloud, cloud shadow, snow."""
S2_SCL_CLASSES = 12
"""SCL classes run 0..11; any other value is not a class and is taken as unusable."""
S2_SCL_UNUSABLE = (0, 1, 3, 8, 9, 10, 11)
"""No data, saturated/defective, cloud shadow, cloud medium and high probability, thin cirrus, snow."""
MODIS_CLOUD_STATE = 0b11
"""state_1km bits 0–1: 00 clear, 01 cloudy, 10 mixed, 11 not set (assumed clear)."""
MODIS_CLOUDY, MODIS_MIXED = 0b01, 0b10
MODIS_SHADOW = 1 << 2
MODIS_INTERNAL_CLOUD = 1 << 10

Decoder = Callable[[np.ndarray], np.ndarray]


def _codes(values: np.ndarray) -> np.ndarray:
    """Integer codes of a mask band (a float band's non-finite values become 0; `decode_mask` flags them)."""
    if values.dtype.kind == "f":
        values = np.where(np.isfinite(values), values, 0)
    return values.astype(np.int64)


def _landsat_qa(values: np.ndarray) -> np.ndarray:
    return (_codes(values) & LANDSAT_QA_UNUSABLE) != 0


def _s2_scl(values: np.ndarray) -> np.ndarray:
    codes = _codes(values)
    return np.isin(codes, S2_SCL_UNUSABLE) | (codes < 0) | (codes >= S2_SCL_CLASSES)


def _modis_state(values: np.ndarray) -> np.ndarray:
    codes = _codes(values)
    state = codes & MODIS_CLOUD_STATE
    return (state == MODIS_CLOUDY) | (state == MODIS_MIXED) | ((codes & (MODIS_SHADOW | MODIS_INTERNAL_CLOUD)) != 0)


def _nonzero(values: np.ndarray) -> np.ndarray:
    return values != 0


_DECODERS: Dict[str, Decoder] = {
    "landsat-qa": _landsat_qa,
    "s2-scl": _s2_scl,
    "modis-state": _modis_state,
    "nonzero": _nonzero,
}


def _decoder(rule: str, label: Optional[str] = None) -> Decoder:
    """The rule's decoder; StfError naming the valid rules (and the mask's label, when known)."""
    decoder = _DECODERS.get(rule)
    if decoder is None:
        where = f" for {label}" if label else ""
        raise StfError(f"unknown mask rule '{rule}'{where}; use one of {', '.join(MASK_RULES)}")
    return decoder


def decode_mask(values: np.ndarray, rule: str) -> np.ndarray:
    """Bool array of `values`' shape, True where the pixel is unusable under `rule` (NaN is always unusable)."""
    values = np.asarray(values)
    unusable = _decoder(rule)(values)
    if values.dtype.kind == "f":
        unusable |= ~np.isfinite(values)
    return unusable


def parse_mask_rules(items: Union[None, str, Sequence[str], Mapping[str, str]]) -> Dict[str, str]:
    """'fine=landsat-qa, coarse=modis-state', ['fine=s2-scl'] or {'fine': 's2-scl'} (a request's field, checked
    alike) → {mask role: rule}."""
    if isinstance(items, Mapping):
        items = [f"{role}={rule}" for role, rule in items.items()]
    rules: Dict[str, str] = {}
    for item in split_list(items):
        role, sep, rule = (part.strip() for part in item.partition("="))
        if not sep:
            raise StfError(f"mask rules are ROLE=RULE (e.g. fine=landsat-qa), got '{item}'")
        if role not in MASK_ROLES:
            raise StfError(f"unknown mask role '{role}' in '{item}'; use one of {', '.join(MASK_ROLES)}")
        _decoder(rule, f"the {role} mask")
        if role in rules:
            raise StfError(f"the {role} mask rule is given twice ({rules[role]}, {rule}); give it once")
        rules[role] = rule
    return rules


class MaskReader:
    """A mask raster's first band on the fine grid, read by windows as 'unusable' flags."""

    def __init__(self, dataset, label: str, grid: Grid, rule: str, shift: Tuple[float, float] = (0.0, 0.0),
                 covered: float = 1.0):
        """`shift`: the one of the raster the mask belongs to (see `GridView`), so its flags stay on its pixels.
        `covered`: the share of the grid the raster covers (the rest is flagged)."""
        self.label = label
        self.covered = covered
        self.dataset = dataset
        self.rule = rule
        # Nearest keeps codes whole.
        self.view = GridView(dataset, grid, Resampling.nearest, label, shift)

    def coverage_note(self, path: str) -> Optional[str]:
        """The warning for a mask that leaves part of the grid uncovered (that part counts as masked), else None."""
        if self.covered >= FULL_COVER:
            return None
        return f"{self.label} covers {percent(self.covered)} of the fine grid; the rest counts as masked: {path}"

    def close(self) -> None:
        """Close the warped view, if any; the dataset stays with whoever opened it."""
        self.view.close()

    def read(self, window: Window) -> np.ndarray:
        """(h, w) bool for a window inside the grid: True where the mask flags the pixel, where it holds its
        nodata value and where it does not reach."""
        values, present = self.view.read([1], window=window)
        return decode_mask(values[0], self.rule) | ~present


def open_mask(stack: ExitStack, path: str, label: str, grid: Grid, rule: str,
              shift: Tuple[float, float] = (0.0, 0.0)) -> MaskReader:
    """The mask raster at `path` on `grid`, decoded with `rule` and moved by its raster's `shift`; closed with the
    stack. The rule is checked before the file is opened; the reader's `covered` is the share of the grid it covers
    (the rest counts as flagged)."""
    _decoder(rule, label)
    dataset = stack.enter_context(open_raster(path, label))
    reader = MaskReader(dataset, label, grid, rule, shift, check_covers(grid, dataset, label))
    stack.callback(reader.close)
    return reader
