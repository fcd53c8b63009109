"""Random nodata-free patches from training scenes, with flips and 90° rotations, from a seeded generator."""
from __future__ import annotations

from typing import Dict, List, Tuple

import numpy as np

from ..errors import StfError
from .scenes import Scene

Batch = Tuple[Dict[str, np.ndarray], np.ndarray]


def _clean_corners(valid: np.ndarray, size: int) -> np.ndarray:
    """Flat indices (into the valid-corner grid) of size×size windows holding no nodata."""
    invalid = np.pad((~valid).astype(np.int64), ((1, 0), (1, 0))).cumsum(0).cumsum(1)
    counts = invalid[size:, size:] - invalid[:-size, size:] - invalid[size:, :-size] + invalid[:-size, :-size]
    return np.flatnonzero(counts == 0)


class PatchSampler:
    """Draws patch×patch samples uniformly over all nodata-free positions of all scenes."""

    def __init__(self, scenes: List[Scene], patch: int, rng: np.random.Generator):
        self.scenes = scenes
        self.patch = min([patch] + [min(scene.shape) for scene in scenes])
        self.rng = rng
        self.corners = [_clean_corners(scene.valid, self.patch) for scene in scenes]
        counts = np.array([len(c) for c in self.corners], dtype=np.float64)
        if counts.sum() == 0:
            raise StfError(
                f"no {self.patch}×{self.patch} patch free of nodata in the training data; use a smaller --patch"
            )
        self.odds = counts / counts.sum()

    def draw(self, count: int, augment: bool = True) -> Batch:
        """`count` patches stacked: (inputs by role (B, C, p, p), target (B, C, p, p))."""
        size = self.patch
        inputs: Dict[str, list] = {role: [] for role in self.scenes[0].inputs}
        targets = []
        for _ in range(count):
            index = self.rng.choice(len(self.scenes), p=self.odds)
            scene, corners = self.scenes[index], self.corners[index]
            row, col = divmod(int(corners[self.rng.integers(len(corners))]), scene.shape[1] - size + 1)
            window = (slice(None), slice(row, row + size), slice(col, col + size))
            flip, turns = (int(v) for v in self.rng.integers(0, [2, 4])) if augment else (0, 0)
            for role, array in scene.inputs.items():
                inputs[role].append(_augment(array[window], flip, turns))
            targets.append(_augment(scene.target[window], flip, turns))
        return {role: np.stack(stack) for role, stack in inputs.items()}, np.stack(targets)


def _augment(patch: np.ndarray, flip: int, turns: int) -> np.ndarray:
    if flip:
        patch = patch[:, :, ::-1]
    return np.ascontiguousarray(np.rot90(patch, turns, axes=(1, 2)))
