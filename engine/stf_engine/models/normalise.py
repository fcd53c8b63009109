"""Per-band normalisation fitted on training data and stored in the checkpoint, so fusing sees what training saw."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Sequence, Tuple

import numpy as np
import torch

from .. import roles


@dataclass(frozen=True)
class Normalisation:
    """Reflectance → (x − mean) / std per band; coarse and fine roles share the fine bands' statistics so
    residual connections between them stay meaningful; the pan band has its own."""

    mean: Tuple[float, ...]
    std: Tuple[float, ...]
    pan_mean: float = 0.0
    pan_std: float = 1.0

    @classmethod
    def fit(cls, fine: Sequence[np.ndarray], pan: Sequence[np.ndarray] = ()) -> "Normalisation":
        """Statistics over (C, N) arrays of valid fine pixels, and (1, N) pan pixels when given."""
        values = np.concatenate(list(fine), axis=1).astype(np.float64)
        mean, std = values.mean(axis=1), np.maximum(values.std(axis=1), 1e-6)
        pan_mean, pan_std = 0.0, 1.0
        if len(pan):
            pan_values = np.concatenate(list(pan), axis=1).astype(np.float64)
            pan_mean, pan_std = float(pan_values.mean()), float(max(pan_values.std(), 1e-6))
        return cls(tuple(map(float, mean)), tuple(map(float, std)), pan_mean, pan_std)

    def _stats(self, role: str, like: torch.Tensor):
        if role == roles.PAN:
            return like.new_tensor(self.pan_mean).view(1, 1, 1, 1), like.new_tensor(self.pan_std).view(1, 1, 1, 1)
        return like.new_tensor(self.mean).view(1, -1, 1, 1), like.new_tensor(self.std).view(1, -1, 1, 1)

    def apply(self, role: str, x: torch.Tensor) -> torch.Tensor:
        mean, std = self._stats(role, x)
        return (x - mean) / std

    def restore(self, x: torch.Tensor) -> torch.Tensor:
        mean, std = self._stats(roles.FINE_REFERENCE, x)
        return x * std + mean

    def to_meta(self) -> Dict[str, Any]:
        return {"mean": list(self.mean), "std": list(self.std), "pan_mean": self.pan_mean, "pan_std": self.pan_std}

    @classmethod
    def from_meta(cls, meta: Dict[str, Any]) -> "Normalisation":
        return cls(tuple(meta["mean"]), tuple(meta["std"]), float(meta["pan_mean"]), float(meta["pan_std"]))
