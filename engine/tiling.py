"""Seamless tiling (SS-STFM): fixed-size cores read with a halo, the last row/column shifted inward."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, List, Sequence, Tuple


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
