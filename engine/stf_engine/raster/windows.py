"""Processing windows over a grid, aligned with the r×r blocks of the coarse sensor."""
from __future__ import annotations

from typing import Iterator

from rasterio.windows import Window


def block_windows(height: int, width: int, ratio: int, target: int = 512) -> Iterator[Window]:
    """Windows of about `target` pixels whose edges fall on the r×r block grid anchored at (0, 0)."""
    step = ratio * max(1, target // ratio)
    for row in range(0, height, step):
        for col in range(0, width, step):
            yield Window(col, row, min(step, width - col), min(step, height - row))
