"""Seamless tiling (SS-STFM): fixed-size cores read with a halo, the last row/column shifted inward."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, List, Sequence, Tuple

from ..errors import StfError
from .options import check_whole

DEFAULT_TILE = 512
"""Core tile side in fine pixels; 0 runs the whole raster as one piece."""
MIN_TILE = 16
"""The smallest tile a request may ask for: below it each tile reads far more halo than it writes, and a run takes
hours for nothing."""


def check_tile(tile: object) -> None:
    """Refuse a tile side that is not 0 (the whole raster) or at least MIN_TILE, naming --tile."""
    check_whole(tile, "--tile", 0)
    if 0 < tile < MIN_TILE:
        raise StfError(f"--tile must be 0 (the whole raster) or at least {MIN_TILE}; got {tile}")


@dataclass(frozen=True)
class Span:
    """One tile's extent along one axis."""

    core_start: int
    core_size: int
    write_start: int
    """First pixel this tile writes (later than core_start when the core overlaps the previous tile)."""
    write_stop: int


@dataclass(frozen=True)
class Tile:
    rows: Span
    cols: Span

    def read_window(self, halo: int) -> Tuple[int, int, int, int]:
        """(row, col, height, width) of the haloed read, possibly reaching past the raster."""
        return (
            self.rows.core_start - halo,
            self.cols.core_start - halo,
            self.rows.core_size + 2 * halo,
            self.cols.core_size + 2 * halo,
        )

    def written(self, halo: int) -> Tuple[slice, slice]:
        """Rows and columns of this tile's haloed prediction that it writes (its core minus overlaps)."""
        r0 = halo + self.rows.write_start - self.rows.core_start
        c0 = halo + self.cols.write_start - self.cols.core_start
        return (
            slice(r0, r0 + self.rows.write_stop - self.rows.write_start),
            slice(c0, c0 + self.cols.write_stop - self.cols.write_start),
        )


@dataclass(frozen=True)
class Clipped:
    """A window that may reach past a raster's edges: the part inside it and the padding on each side."""

    row: int
    col: int
    height: int
    width: int
    pads: Tuple[Tuple[int, int], Tuple[int, int]]
    """((top, bottom), (left, right)) pixels of the requested window outside the raster."""

    @property
    def padded(self) -> bool:
        return any(p for pair in self.pads for p in pair)


def clip(row: int, col: int, height: int, width: int, raster_height: int, raster_width: int) -> Clipped:
    """Split a (row, col, height, width) window into its part inside a raster_height×raster_width raster."""
    r0, c0 = max(row, 0), max(col, 0)
    r1, c1 = min(row + height, raster_height), min(col + width, raster_width)
    pads = ((r0 - row, row + height - r1), (c0 - col, col + width - c1))
    return Clipped(r0, c0, r1 - r0, c1 - c0, pads)


def spans(length: int, tile: int) -> List[Span]:
    """Cores of size `tile` (or the whole axis when tile is 0 or larger), the last shifted inward."""
    if tile <= 0 or tile >= length:
        return [Span(0, length, 0, length)]
    out = []
    for start in range(0, length, tile):
        core = min(start, length - tile)
        out.append(Span(core, tile, start, min(start + tile, length)))
    return out


def plan(height: int, width: int, tile: int) -> List[Tile]:
    """All tiles covering a height×width raster, row-major; every pixel is written exactly once."""
    return [Tile(r, c) for r in spans(height, tile) for c in spans(width, tile)]


@dataclass(frozen=True)
class Piece:
    """A sub-tile of one tile's haloed window, for a tile too large to predict at once."""

    read: Tuple[slice, slice]
    """Rows and columns of the tile's haloed window that the sub-tile reads: its core with the same halo."""
    given: Tuple[slice, slice]
    """Rows and columns of the sub-tile's prediction it gives: its written core, and its halo too on the sides
    where it meets the window's edge, so the pieces give every pixel of the window once."""

    @property
    def into(self) -> Tuple[slice, slice]:
        """Where the given part lies in the tile's haloed window."""
        return tuple(slice(read.start + given.start, read.start + given.stop)
                     for read, given in zip(self.read, self.given))


def pieces(tile: Tile, halo: int, side: int) -> List[Piece]:
    """The tile's core cut into sub-tiles of `side` (as `plan` cuts a raster), each read with the same halo from
    inside the tile's haloed window: with a halo that covers the method's receptive radius, the pieces give
    the tile's own prediction over its whole window."""
    height, width = tile.rows.core_size, tile.cols.core_size
    out = []
    for sub in plan(height, width, side):
        row, col, sub_height, sub_width = sub.read_window(halo)
        rows, cols = sub.written(halo)
        out.append(Piece(
            (slice(row + halo, row + halo + sub_height), slice(col + halo, col + halo + sub_width)),
            (_to_window_edges(rows, sub.rows, height, sub_height), _to_window_edges(cols, sub.cols, width, sub_width)),
        ))
    return out


def _to_window_edges(written: slice, span: Span, length: int, window: int) -> slice:
    """A sub-tile's written part along one axis, widened through its halo where it meets the window's edge."""
    return slice(0 if span.write_start == 0 else written.start, window if span.write_stop == length else written.stop)


def borders(height: int, width: int, tile: int) -> Tuple[Tuple[int, ...], Tuple[int, ...]]:
    """Row and column indices where one tile's written part begins after another's."""
    return (
        tuple(s.write_start for s in spans(height, tile)[1:]),
        tuple(s.write_start for s in spans(width, tile)[1:]),
    )


def batches(tiles: Sequence[Tile], size: int) -> Iterator[Sequence[Tile]]:
    size = max(1, size)
    for i in range(0, len(tiles), size):
        yield tiles[i : i + size]
