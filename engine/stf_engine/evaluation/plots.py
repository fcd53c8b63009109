"""PNG plots of an evaluation: density scatter, error histogram, APA-style diagram and a quick-look panel.

Histograms are accumulated window by window on bins fixed beforehand from decimated previews, so the
plots of a raster of any size cost bounded memory. Values outside the bins are counted and reported
on the plot; they still count fully in every metric.
"""
from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from typing import Dict, Optional, Tuple

import numpy as np

from ..core.progress import Cancel, Progress, check_cancel


def can_draw(notes) -> bool:
    """Whether matplotlib is there to draw the plots; when not, `notes` says the plots are left out, so the metrics
    are still written (QGIS does not ship matplotlib everywhere, and the run failed after measuring)."""
    if importlib.util.find_spec("matplotlib") is not None:
        return True
    notes.add("the plots are left out: matplotlib is not installed in this Python (on Debian or Ubuntu, the package "
              "python3-matplotlib); the metrics are written")
    return False


PLOT_NAMES = ("scatter", "error_histogram", "apa_diagram", "quicklook")
"""The plots an evaluation writes, as <name>.png."""
BINS = 200
PREVIEW_SIDE = 400


@dataclass
class PlotData:
    """Per-band 2-D histogram of (truth, prediction), 1-D histogram of the error, and preview images."""

    value_edges: np.ndarray
    error_edges: np.ndarray
    density: np.ndarray
    """(bands, BINS, BINS) counts: truth along axis 1, prediction along axis 2."""
    errors: np.ndarray
    outside_values: int
    outside_errors: int
    previews: Dict[str, np.ndarray]
    """Decimated images on the prediction's grid: prediction, truth, and fine_reference / coarse if given."""
    preview_valid: np.ndarray

    @classmethod
    def from_previews(cls, prediction, truth, extras: Dict[str, object]) -> "PlotData":
        """Fix histogram bins from decimated reads of the prediction and the truth."""
        pred, pred_valid = prediction.preview(PREVIEW_SIDE)
        true, true_valid = truth.preview(PREVIEW_SIDE)
        valid = pred_valid & true_valid
        values = np.concatenate([pred[:, valid].ravel(), true[:, valid].ravel()]) if valid.any() else np.zeros(1)
        low, high = float(values.min()), float(values.max())
        margin = 0.05 * (high - low) or 0.05 * abs(high) or 0.01  # a constant image: a span around its value
        error = np.percentile(np.abs(pred[:, valid] - true[:, valid]), 99.5) if valid.any() else 0.0
        error = 2.0 * float(error) or 0.01
        previews = {"prediction": pred, "truth": true}
        for role, reader in extras.items():
            previews[role], _ = reader.preview(PREVIEW_SIDE)
        bands = prediction.count
        return cls(
            value_edges=np.linspace(low - margin, high + margin, BINS + 1),
            error_edges=np.linspace(-error, error, BINS + 1),
            density=np.zeros((bands, BINS, BINS), dtype=np.int64),
            errors=np.zeros((bands, BINS), dtype=np.int64),
            outside_values=0,
            outside_errors=0,
            previews=previews,
            preview_valid=valid,
        )

    def add(self, pred: np.ndarray, truth: np.ndarray, valid: np.ndarray) -> None:
        """Add the valid pixels of one (C, h, w) window to the histograms."""
        for band in range(pred.shape[0]):
            p, t = pred[band][valid], truth[band][valid]
            counts, _, _ = np.histogram2d(t, p, bins=(self.value_edges, self.value_edges))
            self.density[band] += counts.astype(np.int64)
            self.outside_values += p.size - int(counts.sum())
            counts, _ = np.histogram(p - t, bins=self.error_edges)
            self.errors[band] += counts
            self.outside_errors += p.size - int(counts.sum())

    def render(self, report, out_dir: str, progress: Progress, cancel: Optional[Cancel] = None) -> Dict[str, str]:
        """Write every plot as PNG into out_dir, honouring a cancel between plots; return name → path."""
        paths = {}
        drawings = {"scatter": self._scatter, "error_histogram": self._error_histogram, "apa_diagram": _apa_diagram,
                    "quicklook": self._quicklook}
        for index, name in enumerate(PLOT_NAMES):
            check_cancel(cancel)
            progress(index / len(PLOT_NAMES), name)
            figure = drawings[name](report)
            paths[name] = os.path.join(out_dir, f"{name}.png")
            figure.savefig(paths[name], dpi=110, bbox_inches="tight")
        return paths

    def _scatter(self, report):
        """Density scatter per band: prediction against truth, log-scaled counts, 1:1 line, R² and RMSE."""
        from matplotlib.colors import LogNorm

        bands = len(report.bands)
        figure, axes = _subplots(1, bands, figsize=(3.6 * bands + 0.6, 3.8), squeeze=False)
        edges = self.value_edges
        for band, ax in enumerate(axes[0]):
            counts = np.ma.masked_equal(self.density[band].T, 0)
            mesh = ax.pcolormesh(edges, edges, counts, norm=LogNorm(vmin=1), cmap="viridis", shading="flat")
            ax.plot(edges[[0, -1]], edges[[0, -1]], color="black", linewidth=0.8, label="1:1")
            values = report.bands[band]
            ax.text(
                0.04, 0.96, f"R² = {_number(values['r2'], '.3f')}\nRMSE = {values['rmse']:.4f}",
                transform=ax.transAxes, va="top", fontsize=9,
                bbox=dict(facecolor="white", alpha=0.8, edgecolor="none"),
            )
            ax.set(title=report.band_names[band], xlabel=f"truth ({_unit(report)})", aspect="equal")
            ax.set_xlim(edges[0], edges[-1])
            ax.set_ylim(edges[0], edges[-1])
        axes[0][0].set_ylabel(f"prediction ({_unit(report)})")
        figure.colorbar(mesh, ax=axes[0].tolist(), label="pixels", shrink=0.8)
        if self.outside_values:
            figure.suptitle(f"{self.outside_values} value(s) outside the axes (still in every metric)", fontsize=8)
        return figure

    def _error_histogram(self, report):
        """Signed error (prediction − truth) per band, with AD and RMSE in the legend."""
        figure, ax = _subplots(figsize=(6.4, 3.8))
        centres = 0.5 * (self.error_edges[1:] + self.error_edges[:-1])
        for band, counts in enumerate(self.errors):
            values = report.bands[band]
            label = f"{report.band_names[band]}: AD {values['ad']:+.4f}, RMSE {values['rmse']:.4f}"
            ax.step(centres, counts, where="mid", label=label)
        ax.axvline(0, color="black", linewidth=0.8)
        ax.set(xlabel=f"prediction − truth ({_unit(report)})", ylabel="pixels", title="error distribution")
        ax.legend(fontsize=8)
        if self.outside_errors:
            ax.text(0.99, 0.02, f"{self.outside_errors} beyond the axes", transform=ax.transAxes, ha="right", fontsize=8)
        return figure

    def _quicklook(self, report):
        """Fine reference, coarse target, prediction, truth (same stretch) and the RMS error across bands."""
        order = [k for k in ("fine_reference", "coarse", "prediction", "truth") if k in self.previews]
        titles = {"fine_reference": "fine reference", "coarse": "coarse target", "prediction": "prediction", "truth": "truth"}
        stretch = _stretch(self.previews["truth"], self.preview_valid)
        figure, axes = _subplots(1, len(order) + 1, figsize=(3.2 * (len(order) + 1), 3.6), constrained_layout=True)
        for ax, key in zip(axes, order):
            ax.imshow(stretch(self.previews[key]), interpolation="nearest")
            ax.set_title(titles[key])
        difference = np.where(self.preview_valid, self.previews["prediction"] - self.previews["truth"], 0.0)
        error = np.ma.masked_where(~self.preview_valid, np.sqrt(np.mean(difference**2, axis=0)))
        top = float(np.percentile(error.compressed(), 99)) if error.count() else 1.0
        image = axes[-1].imshow(error, cmap="magma", vmin=0, vmax=top or 1.0, interpolation="nearest")
        axes[-1].set_title("RMS error (99 % stretch)")
        figure.colorbar(image, ax=axes[-1], shrink=0.75, label=_unit(report))
        for ax in axes:
            ax.set_xticks([])
            ax.set_yticks([])
        return figure


def _subplots(*grid: int, figsize: Tuple[float, float], constrained_layout: bool = False, **axes_options):
    """A figure and its axes, drawn off screen without pyplot: in QGIS, choosing pyplot's backend (Agg) would choose
    it for every plugin there, and close the figures another one has open."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=figsize, constrained_layout=constrained_layout)
    return figure, figure.subplots(*grid, **axes_options)


def _stretch(reference: np.ndarray, valid: np.ndarray):
    """2–98 % per-band stretch of the truth, applied alike to every panel; bands 1-3 as RGB, else band 1."""
    bands = [0, 1, 2] if reference.shape[0] >= 3 else [0]
    samples = reference[bands][:, valid] if valid.any() else reference[bands].reshape(len(bands), -1)
    low, high = np.percentile(samples, 2, axis=1), np.percentile(samples, 98, axis=1)

    def apply(image: np.ndarray) -> np.ndarray:
        # float64: a float32 raster's huge nodata value (-3.4e38) over a small spread would overflow float32
        scaled = (image[bands].astype(np.float64) - low[:, None, None]) / np.maximum(high - low, 1e-9)[:, None, None]
        scaled = np.clip(scaled, 0, 1).transpose(1, 2, 0)
        return np.repeat(scaled, 3, axis=2) if len(bands) == 1 else scaled

    return apply


def _apa_diagram(report):
    """All-round performance (after Zhu et al. 2022): spectral (AD, RMSE) and spatial (Edge, LBP) per band.

    Each band is one point in both panels; the ideal fusion sits at the star (0, 0). Left of zero in
    the spatial panel means smoother / less textured than the truth, right means sharper or noisier.
    """
    from matplotlib import rcParams
    from matplotlib.ticker import MaxNLocator

    figure, (spectral, spatial) = _subplots(1, 2, figsize=(9.2, 4.0))
    colours = rcParams["axes.prop_cycle"].by_key()["color"]
    for band, values in enumerate(report.bands):
        colour = colours[band % len(colours)]
        spectral.scatter(values["ad"], values["rmse"], color=colour, s=60, label=report.band_names[band])
        spatial.scatter(values["edge"], values["lbp"], color=colour, s=60)
    for ax, (x, y), title in (
        (spectral, ("AD (prediction − truth)", "RMSE"), "spectral accuracy"),
        (spatial, ("Edge (relative Roberts gradient)", "LBP (relative)"), "spatial detail"),
    ):
        ax.axvline(0, color="grey", linewidth=0.8)
        ax.axhline(0, color="grey", linewidth=0.8)
        ax.scatter([0], [0], marker="*", s=160, color="black", zorder=3, label="ideal", clip_on=False)
        ax.set(xlabel=x, ylabel=y, title=title)
        ax.xaxis.set_major_locator(MaxNLocator(5))
        _symmetric(ax, both=ax is spatial)
    spectral.legend(fontsize=8, loc="upper left")
    figure.suptitle("APA-style diagram (Zhu et al. 2022): every point should sit at the star", fontsize=10)
    figure.tight_layout()
    return figure


def _symmetric(ax, both: bool) -> None:
    """Centre signed axes on zero so over- and under-estimation read alike; RMSE starts at zero."""
    points = np.concatenate([c.get_offsets() for c in ax.collections]) if ax.collections else np.zeros((1, 2))
    x, y = (_reach(np.asarray(points)[:, axis]) for axis in (0, 1))
    ax.set_xlim(-x, x)
    ax.set_ylim(-y if both else 0, y)


def _reach(values: np.ndarray) -> float:
    """An axis half-span that shows every drawn point: 1.25 × the largest finite |value|, never 0 (all points at 0)
    or infinite; an undefined (NaN) measure is not drawn."""
    finite = np.abs(values[np.isfinite(values)])
    return 1.25 * max(finite.max(initial=0.0), 1e-4)


def _number(value: float, spec: str) -> str:
    """A measure for a plot's text: 'n/a' where it is undefined (NaN)."""
    return "n/a" if np.isnan(value) else format(value, spec)


def _unit(report) -> str:
    """The unit the report measured in (reflectance, or the raster's own such as K)."""
    return report.units.get("rmse", "reflectance")
