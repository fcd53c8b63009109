"""Random patches from training scenes, with flips and 90° rotations, from a seeded generator.

A patch is used when at least MIN_VALID of its pixels hold data; its mask travels with it, so the loss
counts valid pixels only and scenes with nodata borders or gaps still train."""
from __future__ import annotations

from typing import Dict, List, Tuple

import numpy as np

from ..errors import StfError
from .scenes import Scene

Batch = Tuple[Dict[str, np.ndarray], np.ndarray, np.ndarray]
"""(inputs by role (B, C, p, p), target (B, C, p, p), valid (B, 1, p, p))."""
MIN_VALID = 0.5
TRAINING = "the training data"
"""The part of the data a sampler draws from unless told otherwise (the held-out part is named by its caller)."""


def _usable_corners(valid: np.ndarray, size: int) -> np.ndarray:
    """Flat indices (into the corner grid) of size×size windows with at least MIN_VALID of their pixels valid."""
    invalid = np.pad((~valid).astype(np.int64), ((1, 0), (1, 0))).cumsum(0).cumsum(1)
    counts = invalid[size:, size:] - invalid[:-size, size:] - invalid[size:, :-size] + invalid[:-size, :-size]
    return np.flatnonzero(counts <= (1.0 - MIN_VALID) * size * size)


class PatchSampler:
    """Draws patch×patch samples uniformly over the usable positions of all scenes (the patch shrinks to fit)."""

    def __init__(self, scenes: List[Scene], patch: int, rng: np.random.Generator, part: str = TRAINING):
        """`part` names the scenes in a refusal: the training data, or the held-out rows or date."""
        self.scenes = scenes
        self.patch = max(1, min([patch] + [min(scene.shape) for scene in scenes]))
        self.rng = rng
        self.corners = [_usable_corners(scene.valid, self.patch) for scene in scenes]
        counts = np.array([len(c) for c in self.corners], dtype=np.float64)
        if counts.sum() == 0:
            raise StfError(_no_usable_area(scenes, self.patch, part))
        self.odds = counts / counts.sum()

    def draw(self, count: int, augment: bool = True) -> Batch:
        """`count` patches stacked, with their masks (see Batch)."""
        size = self.patch
        inputs: Dict[str, list] = {role: [] for role in self.scenes[0].inputs}
        targets, masks = [], []
        for _ in range(count):
            index = self.rng.choice(len(self.scenes), p=self.odds)
            scene, corners = self.scenes[index], self.corners[index]
            row, col = divmod(int(corners[self.rng.integers(len(corners))]), scene.shape[1] - size + 1)
            window = (slice(None), slice(row, row + size), slice(col, col + size))
            flip, turns = (int(v) for v in self.rng.integers(0, [2, 4])) if augment else (0, 0)
            for role, array in scene.inputs.items():
                inputs[role].append(_augment(array[window], flip, turns))
            targets.append(_augment(scene.target[window], flip, turns))
            masks.append(_augment(scene.valid[None, row : row + size, col : col + size], flip, turns))
        return {role: np.stack(stack) for role, stack in inputs.items()}, np.stack(targets), np.stack(masks)


def _no_usable_area(scenes: List[Scene], patch: int, part: str) -> str:
    """Why no patch can be drawn from `part`; a held-out part short of data is named as such, not as the scene."""
    share = sum(int(s.valid.sum()) for s in scenes) / sum(s.valid.size for s in scenes)
    mostly = "the scene is" if part == TRAINING else "it is"
    why = f"{mostly} mostly nodata or masked" if share < MIN_VALID else "nodata or masks reach into every such area"
    return (f"{part} has no {patch}×{patch} area with at least {MIN_VALID:.0%} of its pixels valid ({share:.0%} of "
            f"all are): {why}")


def _augment(patch: np.ndarray, flip: int, turns: int) -> np.ndarray:
    if flip:
        patch = patch[:, :, ::-1]
    return np.ascontiguousarray(np.rot90(patch, turns, axes=(1, 2)))
