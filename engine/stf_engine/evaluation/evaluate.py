"""`evaluate`: measure a prediction against a truth image window by window, in bounded memory.

The prediction's grid is the reference: the truth (and, for the plots, the fine reference and the
coarse image) are read onto it with `AlignedRaster`. Pixel-wise sums, the spatial measures' sums and
the plot histograms are accumulated per window, so memory depends on the window size only.
"""
from __future__ import annotations

import csv
import json
import math
import os
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import rasterio
import torch

from ..core import tiling
from ..core.device import cpu_threads, resolve_device
from ..core.fields import as_text_paths, check_on_disk, check_switches
from ..core.options import check_real, check_whole, split_list
from ..core.outputs import check_writable_folder, file_key, refuse_overwrite, staged_folder
from ..core.progress import Cancel, Progress, Warnings, check_cancel, reporter, stage
from ..errors import StfError
from ..inputs.aligned import orders_apart, typical_level
from ..raster.grid import Grid, resolution_in
from ..raster.open import open_on_grid, open_raster
from ..raster.reader import AlignedRaster, Scale, bands_word, check_scales, parse_scale
from ..raster.windows import block_windows
from .metrics import SAM_BANDS, PixelSums
from .plots import PLOT_NAMES, PlotData, can_draw
from .spatial import HALO, SpatialSums

BAND_AVERAGED = ("cc", "r2", "ssim", "uiqi", "edge", "lbp")
"""Measures whose overall value is the mean of the per-band values; the others pool all bands' pixels."""
REPORT_FILES = ("metrics.json", "metrics.csv") + tuple(f"{name}.png" for name in PLOT_NAMES)
"""Every file an evaluation may write into its report folder."""
REFLECTANCE = "reflectance"
REFLECTANCE_LIMITS = (-0.5, 1.6)
"""Values outside these (in the raster's scaled units) are not reflectance: temperature, counts, indices ×10000."""
METRIC_ORDER = ("rmse", "mae", "ad", "psnr", "ssim", "cc", "r2", "sam", "ergas", "uiqi", "edge", "lbp", "seam_ratio")
UNITS = {
    "rmse": "reflectance",
    "mae": "reflectance",
    "ad": "reflectance (prediction − truth)",
    "psnr": "dB",
    "ssim": "1",
    "cc": "1",
    "r2": "1",
    "sam": "degrees",
    "ergas": "1 (percent-scaled, lower is better)",
    "uiqi": "1",
    "edge": "relative (signed; < 0 smoother than truth)",
    "lbp": "relative (signed)",
    "seam_ratio": "ratio (1 = no seams)",
}
SCALE_ROLES = ("prediction", "truth", "fine_reference", "coarse")
"""The inputs an evaluation's scales (`--scale ROLE=…`) may set."""
UNDEFINED_ON_CONSTANT = {"t": ("r2", "cc", "edge"), "p": ("cc",)}
"""Measures that divide by the truth's ("t") or the prediction's ("p") variance or gradient: undefined where it is
constant (and UIQI where both are)."""


@dataclass
class EvaluationRequest:
    """A prediction and the truth at its date; the other inputs only feed plots and ERGAS."""

    prediction: str
    truth: str
    fine_reference: Optional[str] = None
    coarse: Optional[str] = None
    """Coarse image at the target date: its pixel size gives ERGAS's h/l, and it appears in the quick-look."""
    out_dir: Optional[str] = None
    """Folder for metrics.json, metrics.csv and plots; None measures only."""
    plots: bool = True
    tile: Optional[int] = None
    """Tile size of the run, for the seam ratio; None reads the STF_TILE tag `fuse` writes into its output."""
    scales: Dict[str, Scale] = field(default_factory=dict)
    """Stored value → reflectance factor, or (scale, offset), per input: prediction, truth, fine_reference, coarse."""
    ratio: Optional[float] = None
    """Coarse/fine pixel-size ratio for ERGAS; overrides the coarse raster's own pixel size."""
    data_range: Optional[float] = None
    """Peak for PSNR and SSIM's constants in the data's units; None: 1 for reflectance, else the truth's range."""
    device: str = "auto"
    threads: Optional[int] = None
    """CPU threads; None takes the number of physical cores."""
    window: int = 512
    """Processing window side in pixels (memory grows with its square); results do not depend on it."""

    def __post_init__(self) -> None:
        """Refuse a mistyped or out-of-range number at once with StfError naming it, as FusionRequest does."""
        check_whole(self.tile, "--tile", 0, optional=True)
        check_real(self.ratio, "--ratio", optional=True)
        if self.ratio is not None and self.ratio < 1:  # ERGAS is often written with h/l, the fine over the coarse
            raise StfError(f"--ratio is the coarse pixel size over the fine one (500/30 for MODIS over Landsat), so "
                           f"above 1; got {self.ratio:g}: give its inverse, {1 / self.ratio:.4g}")
        check_real(self.data_range, "--data-range", optional=True)
        check_whole(self.threads, "--threads", 1, optional=True)
        check_whole(self.window, "window", 1)
        check_scales(self.scales, SCALE_ROLES)
        as_text_paths(self, ("prediction", "truth", "fine_reference", "coarse", "out_dir"))
        check_on_disk(self, ("out_dir",))
        check_switches(self, ("plots",))


def parse_evaluation_scales(items: Union[str, Sequence[str]]) -> Dict[str, Scale]:
    """['truth=1e-4', 'coarse=2.75e-5:-0.2'] → {role: factor or (scale, offset)}; a role may be written with '-'."""
    scales: Dict[str, Scale] = {}
    for item in split_list(items):
        role, sep, value = (part.strip() for part in item.partition("="))
        role = role.replace("-", "_")
        if not sep or role not in SCALE_ROLES:
            raise StfError(f"--scale expects ROLE=FACTOR or ROLE=SCALE:OFFSET with ROLE one of "
                           f"{', '.join(SCALE_ROLES)}, got '{item}'")
        scales[role] = parse_scale(value, f"--scale {item}")
    return scales


@dataclass
class EvaluationReport:
    """Measures per band and overall, their units, and the files written."""

    overall: Dict[str, float]
    bands: List[Dict[str, float]]
    units: Dict[str, str]
    files: Dict[str, str] = field(default_factory=dict)
    band_names: List[str] = field(default_factory=list)
    valid_pixels: int = 0
    notes: List[str] = field(default_factory=list)
    data_range: float = 1.0
    """The peak PSNR and SSIM used, in the data's units."""

    def to_json(self) -> str:
        return json.dumps(_finite(asdict(self)), indent=2)


def evaluate(
    request: EvaluationRequest, progress: Optional[Progress] = None, cancel: Optional[Cancel] = None
) -> EvaluationReport:
    """Measure request.prediction against request.truth; write metrics and plots when out_dir is set."""
    report_progress = reporter(progress, cancel)
    _check_distinct(request)
    _check_outputs(request)
    device = resolve_device(request.device)
    notes = Warnings()
    with rasterio.Env(GDAL_CACHEMAX=128 * 2**20), ExitStack() as stack:
        stack.enter_context(cpu_threads(request.threads))
        pred_ds = stack.enter_context(open_raster(request.prediction, "prediction"))
        grid = Grid.of(pred_ds)
        pred = _on_grid(stack, request.prediction, "prediction", grid, request, "nearest", dataset=pred_ds)
        truth = _on_grid(stack, request.truth, "truth", grid, request, "nearest")
        if truth.count != pred.count:
            raise StfError(f"the prediction {request.prediction} has {pred.count} {bands_word(pred.count)} but the truth "
                           f"{request.truth} "
                           f"has {truth.count}; give as truth the fine image of the prediction's date with the same "
                           f"bands in the same order")
        truth_values = _valid_sample(truth)
        _check_units(request, _valid_sample(pred), truth_values, notes)
        data_range, unit = _range_and_unit(request, truth_values, truth.dataset, notes)
        borders = _borders(request, pred_ds, grid)
        band_names = [pred_ds.descriptions[b - 1] or f"band {b}" for b in pred.bands]
        ratio = _ratio(stack, request, grid, notes)
        plots = None
        if request.out_dir and request.plots and can_draw(notes):
            extras = {
                role: _on_grid(stack, path, role.replace("_", " "), grid, request, "bilinear")
                for role, path in (("fine_reference", request.fine_reference), ("coarse", request.coarse))
                if path
            }
            plots = PlotData.from_previews(pred, truth, extras)

        pixel_sums, spatial_sums = PixelSums(pred.count), SpatialSums(pred.count)
        own_valid = {"prediction": 0, "truth": 0}
        windows = list(block_windows(grid.height, grid.width, 1, request.window))
        for index, window in enumerate(windows):
            check_cancel(cancel)
            p, p_valid = pred.read_haloed(window, HALO)
            t, t_valid = truth.read_haloed(window, HALO)
            valid = p_valid & t_valid
            core = (slice(HALO, -HALO), slice(HALO, -HALO))
            own_valid["prediction"] += int(p_valid[core].sum())
            own_valid["truth"] += int(t_valid[core].sum())
            origin = (int(window.row_off), int(window.col_off))
            pixel_sums.add(p[(...,) + core], t[(...,) + core], valid[core], origin, borders)
            spatial_sums.add(*(torch.from_numpy(a).to(device) for a in (p, t, valid)), data_range)
            if plots is not None:
                plots.add(p[(...,) + core], t[(...,) + core], valid[core])
            report_progress((index + 1) / len(windows) * (0.9 if plots else 1.0), f"window {index + 1}/{len(windows)}")
        check_cancel(cancel)

    _check_shared(request, own_valid, pixel_sums.pixels)
    overall, bands = _combine(pixel_sums, spatial_sums, data_range, ratio)
    _note_constant(pixel_sums, band_names, notes)
    _note_sam(pixel_sums, notes)
    report = EvaluationReport(
        overall=overall,
        bands=bands,
        units={k: UNITS[k].replace(REFLECTANCE, unit) for k in METRIC_ORDER if k in overall},
        data_range=data_range,
        band_names=band_names,
        valid_pixels=pixel_sums.pixels,
        notes=notes,
    )
    if request.out_dir:
        with staged_folder(request.out_dir, "evaluation report") as staging:
            written = {"metrics.json": os.path.join(staging, "metrics.json"), **_write_csv(report, staging)}
            if plots is not None:
                written.update(plots.render(report, staging, stage(report_progress, 0.9, 1.0, "plots"), cancel))
            check_cancel(cancel)
            report.files = {name: os.path.join(request.out_dir, os.path.basename(p)) for name, p in written.items()}
            _write_json(report, written["metrics.json"])
            _remove_stale_plots(request.out_dir, report.files)
    report_progress(1.0, "done")
    return report


def measure(
    pred: np.ndarray,
    truth: np.ndarray,
    valid: Optional[np.ndarray] = None,
    data_range: float = 1.0,
    ratio: Optional[float] = None,
    borders=None,
    device: str = "cpu",
) -> Tuple[Dict[str, float], List[Dict[str, float]]]:
    """Every measure of in-memory (C, H, W) reflectance arrays as one window: (overall, per band)."""
    valid = np.ones(pred.shape[1:], dtype=bool) if valid is None else valid
    pads = ((HALO, HALO), (HALO, HALO))
    padded = [np.pad(np.asarray(a, dtype=np.float32), ((0, 0),) + pads) for a in (pred, truth)]
    pixel_sums, spatial_sums = PixelSums(pred.shape[0]), SpatialSums(pred.shape[0])
    pixel_sums.add(pred, truth, valid, (0, 0), borders if borders and any(borders) else None)
    target = resolve_device(device)
    spatial_sums.add(*(torch.from_numpy(a).to(target) for a in (*padded, np.pad(valid, pads))), data_range)
    return _combine(pixel_sums, spatial_sums, data_range, ratio)


def _combine(pixel_sums: PixelSums, spatial_sums: SpatialSums, data_range: float, ratio: Optional[float]):
    """Final (overall, per-band) values from the accumulated sums."""
    if not pixel_sums.pixels:
        raise StfError("the prediction and the truth share no valid pixels")
    band_values, overall = pixel_sums.results(data_range, ratio)
    band_values.update(spatial_sums.results())
    for name in BAND_AVERAGED:
        overall[name] = float(np.mean(band_values[name]))
    bands = [_ordered({k: float(v[b]) for k, v in band_values.items()}) for b in range(pixel_sums.bands)]
    return _ordered(overall), bands


def _check_distinct(request: EvaluationRequest) -> None:
    """Refuse a prediction that is the truth's file (by another path, a link, a hard link): it scores perfectly."""
    if file_key(request.prediction) == file_key(request.truth):
        raise StfError(f"the prediction and the truth are the same file ({request.truth}); give as truth the fine "
                       f"image observed at the prediction's date")


def _check_shared(request: EvaluationRequest, own_valid: Dict[str, int], shared: int) -> None:
    """Refuse, naming the file, a prediction and a truth with no valid pixel in common: one of them holds none
    over the prediction's extent (all nodata or masked), or their valid areas do not meet."""
    if shared:
        return
    where = {"prediction": "", "truth": " where the prediction lies"}
    for role, path in (("prediction", request.prediction), ("truth", request.truth)):
        if not own_valid[role]:
            raise StfError(f"the {role} {path} holds no valid pixel{where[role]} (all nodata or masked); check its "
                           f"nodata value and mask, or give another {role}")
    raise StfError(f"the prediction {request.prediction} and the truth {request.truth} share no valid pixel: their "
                   f"valid areas do not meet; give a truth with data where the prediction has data")


def _check_outputs(request: EvaluationRequest) -> None:
    """The report never replaces an input, and its folder accepts files: checked before any work."""
    if not request.out_dir:
        return
    if os.path.exists(request.out_dir) and not os.path.isdir(request.out_dir):
        raise StfError(f"the report folder {request.out_dir} is a file; give a folder")
    check_writable_folder(request.out_dir, "evaluation report")
    inputs = {"prediction": request.prediction, "truth": request.truth, "fine reference": request.fine_reference,
              "coarse image": request.coarse}
    refuse_overwrite({f"report file {name}": os.path.join(request.out_dir, name) for name in REPORT_FILES}, inputs)


def _remove_stale_plots(out_dir: str, written: Dict[str, str]) -> None:
    """Remove the plots an earlier report left in out_dir that this one does not write, so none passes for this
    run's (`_check_outputs` has refused a run where such a path is an input)."""
    for name in PLOT_NAMES:
        path = os.path.join(out_dir, f"{name}.png")
        if name not in written and os.path.isfile(path):
            os.remove(path)


def _valid_sample(raster: AlignedRaster) -> np.ndarray:
    """A bounded sample of the raster's valid values, (bands, pixels)."""
    data, valid = raster.sample()
    return data[:, valid]


def _check_units(request: EvaluationRequest, pred: np.ndarray, truth: np.ndarray, notes: Warnings) -> None:
    """Warn when the prediction's and the truth's values differ by orders of magnitude (reflectance against
    values ×10000), as fusion warns on its inputs: every measure would compare numbers in different units."""
    if not (pred.size and truth.size):
        return
    levels = {"prediction": typical_level(pred), "truth": typical_level(truth)}
    power = orders_apart(levels["truth"], levels["prediction"])
    if power:
        larger = "truth" if power > 0 else "prediction"
        notes.add(f"the prediction ({request.prediction}, median magnitude {levels['prediction']:.4g}) and the truth "
                  f"({request.truth}, median magnitude {levels['truth']:.4g}) differ by about 10^{abs(power)}: "
                  f"check their units and set --scale {larger}=1e-{abs(power)} if the {larger} holds reflectance "
                  f"×10^{abs(power)}")


def _range_and_unit(request: EvaluationRequest, values: np.ndarray, dataset, notes: Warnings) -> Tuple[float, str]:
    """PSNR/SSIM peak and the unit of the truth's sampled values: reflectance (peak 1) unless the values say
    otherwise, then their own range as the peak and their unit from the raster's metadata."""
    reflectance = values.size == 0 or (values.min() >= REFLECTANCE_LIMITS[0] and values.max() <= REFLECTANCE_LIMITS[1])
    unit = REFLECTANCE if reflectance else _unit_of(dataset)
    if request.data_range:
        return float(request.data_range), unit
    if reflectance:
        return 1.0, unit
    peak = float(values.max() - values.min()) or 1.0
    notes.add(f"the truth is not reflectance (values {values.min():.4g} to {values.max():.4g} {unit}): PSNR and SSIM "
              f"take its range, {peak:.4g}, as their peak (set --data-range to choose another)")
    return peak, unit


def _note_constant(pixel_sums: PixelSums, names: List[str], notes: Warnings) -> None:
    """One warning for the truth, one for the prediction, where it is constant in some band: the measures that
    divide by its variance or gradient are undefined there, and the report gives them as n/a."""
    both = pixel_sums.constant("t") & pixel_sums.constant("p")
    for role, key in (("truth", "t"), ("prediction", "p")):
        flat = pixel_sums.constant(key)
        if flat.any():
            where = "every band" if flat.all() else ", ".join(name for name, f in zip(names, flat) if f)
            undefined = UNDEFINED_ON_CONSTANT[key] + (("uiqi",) if both.any() else ())
            notes.add(f"the {role} is constant in {where} (one value in every valid pixel), so the measures that "
                      f"divide by its variance or gradient are undefined there (n/a): {', '.join(undefined)}")


def _note_sam(pixel_sums: PixelSums, notes: Warnings) -> None:
    """Say why SAM is n/a for a single band, or how many pixels it leaves out (a spectrum all zero)."""
    if pixel_sums.bands < SAM_BANDS:
        notes.add(f"SAM needs at least {SAM_BANDS} bands: the spectral angle of a single band is 0° wherever the "
                  "prediction and the truth share a sign, whatever their error, so it is undefined here (n/a)")
    if pixel_sums.zero_vectors:
        notes.add(f"SAM leaves out {pixel_sums.zero_vectors} pixel(s) where a spectrum is all zero (angle undefined)")


def _unit_of(dataset) -> str:
    """The first band's unit from the raster's metadata (GDAL unit type, else a UNITS tag)."""
    named = (dataset.units or (None,))[0] or dataset.tags(1).get("UNITS") or dataset.tags().get("UNITS")
    return named or "data units"


def _on_grid(stack: ExitStack, path: str, label: str, grid: Grid, request: EvaluationRequest, upsampling: str,
             dataset=None) -> AlignedRaster:
    """One input on the prediction's grid (averaging when it is finer, `upsampling` otherwise)."""
    scale = request.scales.get(label.replace(" ", "_"))
    return open_on_grid(stack, path, label, grid, scale, upsampling, against="the prediction",
                        dataset=dataset)


def _borders(request: EvaluationRequest, dataset, grid: Grid):
    """Tile borders from the request's tile size, else from the STF_TILE tag; None (no seam ratio) without either.

    None goes without a warning: a one-tile run has no seams, and `fuse` and `fuse-series` tag every output, so an
    untagged prediction is another tool's, with no STF tile seams (stf:evaluate could not set a tile size either).
    """
    tile = request.tile
    if tile is None:
        tag = dataset.tags().get("STF_TILE")
        if tag is None or not tag.strip().isdigit():
            return None
        tile = int(tag)
    borders = tiling.borders(grid.height, grid.width, tile)
    return borders if any(borders) else None


def _ratio(stack: ExitStack, request: EvaluationRequest, grid: Grid, notes: List[str]) -> Optional[float]:
    """Coarse/fine pixel-size ratio for ERGAS: the request's, else the coarse raster's pixel size."""
    if request.ratio:
        return float(request.ratio)
    if request.coarse:
        coarse = stack.enter_context(open_raster(request.coarse, "coarse"))
        ratio = resolution_in(grid, coarse) / grid.resolution
        if ratio < 1.5:
            notes.add(
                f"the coarse image's pixel size is {ratio:.2f}× the fine one; if it was resampled from a coarser "
                "sensor, give the real ratio (--ratio) for ERGAS"
            )
        return ratio
    notes.add("ERGAS needs the coarse/fine pixel-size ratio: give --coarse or --ratio")
    return None


def _ordered(values: Dict[str, float]) -> Dict[str, float]:
    return {k: float(values[k]) for k in METRIC_ORDER if k in values}


def _finite(value):
    """JSON has no NaN or infinity: they become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def _write_json(report: EvaluationReport, path: str) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(report.to_json() + "\n")


def _write_csv(report: EvaluationReport, out_dir: str) -> Dict[str, str]:
    """metrics.csv: a row per band, then the overall row."""
    path = os.path.join(out_dir, "metrics.csv")
    columns = list(report.overall)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["band", "name"] + columns)
        for number, (name, values) in enumerate(zip(report.band_names, report.bands), start=1):
            writer.writerow([number, name] + [_cell(values.get(k)) for k in columns])
        writer.writerow(["overall", ""] + [_cell(report.overall[k]) for k in columns])
    return {"metrics.csv": path}


def _cell(value: Optional[float]) -> str:
    """A CSV cell: empty for a measure left out or undefined (NaN)."""
    return "" if value is None or math.isnan(value) else repr(float(value))
