"""Pixel-wise accuracy measures from running sums, so any raster is measured window by window.

Every sum is float64 over the pixels valid in both images; nothing is clipped or dropped. The
formulas are in docs/assessment.md; `PixelSums.results` is the one place they are written down in code.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Dict, Optional, Tuple

import numpy as np

from ..core.seams import Borders, seam_mask_window

MOMENTS = ("n", "p", "t", "pp", "tt", "pt", "abs", "diff", "sq", "seam_n", "seam_sq")
SAM_BANDS = 2
"""The fewest bands a spectral angle means anything with: one band's angle is 0° wherever p and t share a sign."""


@dataclass
class PixelSums:
    """Per-band sums of the prediction p, the truth t and their products, plus the spectral angle."""

    bands: int
    sums: Dict[str, np.ndarray] = field(init=False)
    lowest: Dict[str, np.ndarray] = field(init=False)
    """Per-band minimum of the prediction ("p") and the truth ("t"); with `highest`, tells a constant band."""
    highest: Dict[str, np.ndarray] = field(init=False)
    angle_sum: float = 0.0
    angle_count: int = 0
    """Pixels in the spectral angle's mean: none with fewer than SAM_BANDS bands (SAM is then NaN, undefined)."""
    zero_vectors: int = 0
    """Valid pixels where p or t is the zero vector: their spectral angle is undefined."""

    def __post_init__(self):
        self.sums = {name: np.zeros(self.bands) for name in MOMENTS}
        self.lowest = {name: np.full(self.bands, np.inf) for name in "pt"}
        self.highest = {name: np.full(self.bands, -np.inf) for name in "pt"}

    def add(
        self,
        pred: np.ndarray,
        truth: np.ndarray,
        valid: np.ndarray,
        origin: Tuple[int, int] = (0, 0),
        borders: Optional[Borders] = None,
    ) -> None:
        """Add a (C, h, w) window at `origin` (row, col) of the raster; `borders` are the run's tile borders."""
        p = pred[:, valid].astype(np.float64)
        t = truth[:, valid].astype(np.float64)
        d = p - t
        s = self.sums
        s["n"] += p.shape[1]
        s["p"] += p.sum(axis=1)
        s["t"] += t.sum(axis=1)
        s["pp"] += (p * p).sum(axis=1)
        s["tt"] += (t * t).sum(axis=1)
        s["pt"] += (p * t).sum(axis=1)
        s["abs"] += np.abs(d).sum(axis=1)
        s["diff"] += d.sum(axis=1)
        s["sq"] += (d * d).sum(axis=1)
        for name, values in (("p", p), ("t", t)):
            self.lowest[name] = np.minimum(self.lowest[name], values.min(axis=1, initial=np.inf))
            self.highest[name] = np.maximum(self.highest[name], values.max(axis=1, initial=-np.inf))
        if borders is not None:
            seams = seam_mask_window(*origin, *valid.shape, borders)[valid]
            s["seam_n"] += seams.sum()
            s["seam_sq"] += (d[:, seams] ** 2).sum(axis=1)
        if self.bands >= SAM_BANDS:
            self._add_angles(p, t)

    def _add_angles(self, p: np.ndarray, t: np.ndarray) -> None:
        """Add the spectral angles of (C, n) valid spectra; zero vectors are counted, not measured."""
        norms = np.sqrt((p * p).sum(axis=0) * (t * t).sum(axis=0))
        defined = norms > 0
        cosine = (p * t).sum(axis=0)[defined] / norms[defined]
        self.angle_sum += float(np.degrees(np.arccos(np.clip(cosine, -1.0, 1.0))).sum())
        self.angle_count += int(defined.sum())
        self.zero_vectors += int((~defined).sum())

    def results(self, data_range: float, ratio: Optional[float]) -> Tuple[Dict[str, np.ndarray], Dict[str, float]]:
        """(per-band arrays, overall values) for every pixel-wise measure; `ratio` = coarse/fine pixel size."""
        s = self.sums
        n = s["n"]
        with np.errstate(invalid="ignore", divide="ignore"):
            mean_p, mean_t = s["p"] / n, s["t"] / n
            flat_p, flat_t = self.constant("p"), self.constant("t")
            # A constant band's variance and covariances are exactly 0; the sums would only round to near 0.
            var_p = np.where(flat_p, 0.0, s["pp"] / n - mean_p**2)
            var_t = np.where(flat_t, 0.0, s["tt"] / n - mean_t**2)
            cov = np.where(flat_p | flat_t, 0.0, s["pt"] / n - mean_p * mean_t)
            mse = s["sq"] / n
            band = {
                "rmse": np.sqrt(mse),
                "mae": s["abs"] / n,
                "ad": s["diff"] / n,
                "psnr": 10 * np.log10(data_range**2 / mse),
                "cc": cov / np.sqrt(var_p * var_t),  # 0/0: undefined when either is constant
                "r2": np.where(flat_t, np.nan, 1 - s["sq"] / (s["tt"] - n * mean_t**2)),
                "uiqi": 4 * cov * mean_p * mean_t / ((var_p + var_t) * (mean_p**2 + mean_t**2)),
            }
            overall_mse = s["sq"].sum() / n.sum()
            overall = {
                "rmse": math.sqrt(overall_mse),
                "mae": s["abs"].sum() / n.sum(),
                "ad": s["diff"].sum() / n.sum(),
                "psnr": 10 * math.log10(data_range**2 / overall_mse) if overall_mse > 0 else math.inf,
                "sam": self.angle_sum / self.angle_count if self.angle_count else math.nan,
            }
            if ratio:
                overall["ergas"] = 100.0 / ratio * math.sqrt(np.mean(mse / mean_t**2))
            if s["seam_n"].any():
                band["seam_ratio"] = np.sqrt(s["seam_sq"] / s["seam_n"]) / np.sqrt(mse)
                overall["seam_ratio"] = math.sqrt(s["seam_sq"].sum() / s["seam_n"].sum() / overall_mse)
        return band, overall

    def constant(self, name: str) -> np.ndarray:
        """Bands where every valid value of the prediction ("p") or the truth ("t") is the same."""
        return self.lowest[name] == self.highest[name]

    @property
    def pixels(self) -> int:
        return int(self.sums["n"][0]) if self.bands else 0

