"""Tile planning: fixed-size cores, last row/column shifted inward, every pixel written exactly once."""
import numpy as np
import pytest

from stf_engine.core import tiling


@pytest.mark.parametrize("height,width,tile", [(500, 500, 128), (97, 130, 32), (64, 64, 64), (50, 300, 0), (7, 9, 4)])
def test_plan_writes_every_pixel_once_with_fixed_core_size(height, width, tile):
    written = np.zeros((height, width), dtype=int)
    tiles = tiling.plan(height, width, tile)
    shapes = {(t.rows.core_size, t.cols.core_size) for t in tiles}
    assert len(shapes) == 1, "all tiles must share one shape so they batch"
    for t in tiles:
        assert 0 <= t.rows.core_start and t.rows.core_start + t.rows.core_size <= height
        assert t.rows.core_start <= t.rows.write_start < t.rows.write_stop <= t.rows.core_start + t.rows.core_size
        written[t.rows.write_start : t.rows.write_stop, t.cols.write_start : t.cols.write_stop] += 1
    assert (written == 1).all()


def test_last_tile_shifts_inward_and_borders_follow_written_parts():
    spans = tiling.spans(300, 128)
    assert [s.core_start for s in spans] == [0, 128, 172]
    assert [(s.write_start, s.write_stop) for s in spans] == [(0, 128), (128, 256), (256, 300)]
    assert tiling.borders(300, 100, 128) == ((128, 256), ())


def test_read_window_adds_halo_on_every_side():
    tile = tiling.plan(100, 100, 50)[3]
    assert tile.read_window(7) == (50 - 7, 50 - 7, 64, 64)


def test_batches_split_in_order():
    tiles = tiling.plan(100, 100, 25)
    groups = list(tiling.batches(tiles, 3))
    assert [len(g) for g in groups] == [3, 3, 3, 3, 3, 1]
    assert [t for g in groups for t in g] == tiles
