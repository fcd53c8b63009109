"""Block statistics on the fine grid: averaging r×r blocks as a coarse sensor would, ignoring nodata."""
from __future__ import annotations

from typing import Tuple

import numpy as np


def block_mean(data: np.ndarray, valid: np.ndarray, ratio: int) -> Tuple[np.ndarray, np.ndarray]:
    """Mean of valid pixels per r×r block of (C, h, w); returns (means (C, hb, wb), block has data)."""
    channels, height, width = data.shape
    hb, wb = -(-height // ratio), -(-width // ratio)
    pad = ((0, 0), (0, hb * ratio - height), (0, wb * ratio - width))
    weights = np.pad(valid.astype(np.float32), pad[1:])
    values = np.pad(np.where(valid, data, 0.0), pad)
    sums = values.reshape(channels, hb, ratio, wb, ratio).sum(axis=(2, 4))
    counts = weights.reshape(hb, ratio, wb, ratio).sum(axis=(1, 3))
    has_data = counts > 0
    return sums / np.maximum(counts, 1), has_data


def expand(blocks: np.ndarray, ratio: int, height: int, width: int) -> np.ndarray:
    """Blocks back onto the fine pixels they cover, cropped to (height, width)."""
    return blocks.repeat(ratio, axis=-2).repeat(ratio, axis=-1)[..., :height, :width]
