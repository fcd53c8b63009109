"""Windowed GeoTIFF output: tiled, compressed, written to a temporary file and renamed only on success."""
from __future__ import annotations

import os
import re
import secrets
import threading
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import rasterio
import rasterio.shutil
from rasterio._err import CPLE_BaseError
from rasterio.windows import Window

from ..core.device import run_threads
from ..core.outputs import replace_output, why_write_failed
from ..core.progress import Cancel, check_cancel
from ..errors import StfError
from .gdal_log import gdal_errors
from .grid import Grid
from .reader import Units

ASIDE = ".partial.old.tif"
"""How the name of an output moved aside while the new outputs move in ends."""
PARTIAL_NAME = re.compile(r"\.(?P<target>.+)\.[0-9a-f]{8}\.partial(?:\.cog|\.old)?\.tif")
"""The hidden files a GeoTiffWriter writes until its output is complete, '.<output name>.<random>.partial.tif', and
where an output already there waits while the new ones move in ('….partial.old.tif')."""
BLOCK = 256
COG_BLOCK = 512
CANCEL_POLL_SECONDS = 0.1
"""How often a run waiting for GDAL's COG copy looks for a cancel."""


def compression() -> str:
    """ZSTD where this GDAL has it, DEFLATE otherwise."""
    return "zstd" if "ZSTD" in _gtiff_compressions() else "deflate"


def _gtiff_compressions() -> str:
    from osgeo import gdal  # noqa: F401  (optional: Debian's GDAL bindings)

    return gdal.GetDriverByName("GTiff").GetMetadataItem("DMD_CREATIONOPTIONLIST") or ""


def partial_target(name: str) -> Optional[str]:
    """The output file name a writer's partial file called `name` was for; None when `name` is no such file."""
    match = PARTIAL_NAME.fullmatch(name)
    return match.group("target") if match else None


def remove_left_partials(folder: str, is_output: Callable[[str], bool]) -> None:
    """Remove the hidden partial files in `folder` of the outputs `is_output` names (by file name) that runs killed
    outright (SIGKILL, power loss: no cleanup ran) left; an earlier output a run killed in its final renames had moved
    aside goes back to its name when nothing took it. Call it holding those outputs' lock: a run writes them while
    it holds the lock and removes them before letting go, so with the lock held no live run owns one."""
    for name in sorted(os.listdir(folder)):
        path = os.path.join(folder, name)
        target = partial_target(name)
        if not (target and is_output(target) and os.path.isfile(path) and not os.path.islink(path)):
            continue
        with suppress(OSError):  # still open in an abandoned copy (Windows): a later run removes it
            if name.endswith(ASIDE) and not os.path.lexists(os.path.join(folder, target)):
                os.replace(path, os.path.join(folder, target))
            else:
                os.remove(path)


def geotiff_profile(grid: Grid, count: int, dtype: str, nodata) -> Dict:
    try:
        compress = compression()
    except ImportError:
        compress = "deflate"
    return dict(
        driver="GTiff",
        crs=grid.crs,
        transform=grid.transform,
        width=grid.width,
        height=grid.height,
        count=count,
        dtype=dtype,
        nodata=nodata,
        tiled=True,
        blockxsize=BLOCK,
        blockysize=BLOCK,
        compress=compress,
        predictor=3 if np.issubdtype(np.dtype(dtype), np.floating) else 2,
        bigtiff="IF_SAFER",
        interleave="pixel" if count <= 4 else "band",
        num_threads=run_threads(),  # blocks compressed in parallel, on the run's --threads
    )


@dataclass(frozen=True)
class Encoding:
    """How reflectance is stored in an output: the fine reference's dtype, scale/offset, nodata and band names."""

    dtype: str
    nodata: Optional[float]
    units: Units
    descriptions: Tuple[Optional[str], ...] = ()

    @property
    def output_nodata(self):
        """The fine reference's nodata, else NaN for floats and the type's minimum for integers."""
        if self.nodata is not None:
            return self.nodata
        dtype = np.dtype(self.dtype)
        return float("nan") if np.issubdtype(dtype, np.floating) else np.iinfo(dtype).min

    def to_stored(self, reflectance: np.ndarray, valid: np.ndarray) -> np.ndarray:
        """(C, h, w) reflectance → stored values, nodata where `valid` is False; data never equals nodata."""
        dtype = np.dtype(self.dtype)
        nodata = self.output_nodata
        stored = self.units.to_stored(reflectance)
        if np.issubdtype(dtype, np.integer):
            info = np.iinfo(dtype)
            stored = np.clip(np.rint(stored), info.min, info.max)
            stored[(stored == nodata) & valid] -= 1 if nodata == info.max else -1
        stored = stored.astype(dtype)
        stored[:, ~valid] = nodata
        return stored


class GeoTiffWriter:
    """One output being written by windows under a temporary name beside its final path.

    Every GDAL write error (a full disk reports one only through GDAL's error log) becomes an StfError
    naming the output, so a failed write can never end in a successful-looking run.
    """

    def __init__(self, path: str, profile: Dict, descriptions: Optional[Sequence[str]], tags: Dict[str, str],
                 units: Optional[Units] = None, cog: bool = False):
        """`units`: the stored values' scale and offset (per band when they differ), written as GDAL band
        metadata (so the file says what it holds) unless they are the identity. `cog`: rewritten as a Cloud
        Optimized GeoTIFF when complete."""
        self.path = os.path.abspath(path)
        self.profile = profile
        self.cog = cog
        self.copying: Optional[_CogCopy] = None
        folder = os.path.dirname(self.path)
        self.partial = os.path.join(folder, f".{os.path.basename(self.path)}.{secrets.token_hex(4)}.partial.tif")
        with self._checked("create"):
            os.makedirs(folder, exist_ok=True)
            self.dataset = rasterio.open(self.partial, "w", **profile)
            for band, text in enumerate(descriptions or (), start=1):
                self.dataset.set_band_description(band, text)
            if tags:
                self.dataset.update_tags(**tags)
            if units is not None and not units.identity:
                self.dataset.scales, self.dataset.offsets = units.per_band(profile["count"])

    def write(self, array: np.ndarray, row: int, col: int) -> None:
        """Write (C, h, w) at the given offset of the grid."""
        with self._checked("write"):
            self.dataset.write(array, window=Window(col, row, array.shape[-1], array.shape[-2]))

    def close(self) -> None:
        if not self.dataset.closed:
            with self._checked("write"):
                self.dataset.close()

    def verify(self) -> None:
        """Re-open the closed file and read its last block: the file is whole and readable."""
        with self._checked("verify"):
            with rasterio.open(self.partial) as written:
                if (written.width, written.height, written.count) != (
                    self.profile["width"], self.profile["height"], self.profile["count"]
                ):
                    raise StfError(f"cannot write {self.path}: the written file does not have the expected size")
                block = Window(max(0, written.width - BLOCK), max(0, written.height - BLOCK),
                               min(BLOCK, written.width), min(BLOCK, written.height))
                written.read(window=block)

    def to_cog(self, cancel: Optional[Cancel] = None) -> None:
        """Rewrite the finished partial file as a Cloud Optimized GeoTIFF (internal overviews, 512² blocks): a
        second pass over the file, because a COG's overviews and layout need the whole image first. GDAL's copy
        cannot be interrupted, so it runs on a thread of its own and a cancel is honoured at once: the copy then
        removes its files when GDAL is done with them."""
        plain, self.partial = self.partial, self.partial[: -len(".tif")] + ".cog.tif"
        self.copying = _CogCopy(plain, self.partial, dict(
            COMPRESS=self.profile["compress"].upper(), PREDICTOR="YES", OVERVIEWS="AUTO", BLOCKSIZE=COG_BLOCK,
            BIGTIFF="IF_SAFER", RESAMPLING="AVERAGE", NUM_THREADS=str(run_threads())))
        self.copying.start()
        try:
            while self.copying.is_alive():
                self.copying.join(CANCEL_POLL_SECONDS)
                check_cancel(cancel)
        except BaseException:
            self.copying.abandon()
            raise
        if self.copying.errors:
            self._failed("write", self.copying.errors)

    @contextmanager
    def _checked(self, what: str) -> Iterator[None]:
        with gdal_errors() as errors:
            try:
                yield
            except (OSError, rasterio.errors.RasterioError, CPLE_BaseError) as exc:  # rasterio.shutil raises CPLE_*
                errors.append(str(exc))
        if errors:
            self._failed(what, errors)

    def _failed(self, what: str, errors: List[str]) -> None:
        """StfError: the output could not be created, written or verified, and why (a full disk, …)."""
        reason = why_write_failed(" ".join(errors), os.path.dirname(self.path)) if what != "verify" else errors[0]
        raise StfError(f"cannot {what} {self.path}: {reason}")


class _CogCopy(threading.Thread):
    """GDAL's COG copy of `plain` to `target`, which removes `plain` when done, and `target` too when the run
    that started it has stopped waiting (`abandon`): only then is GDAL done writing it."""

    def __init__(self, plain: str, target: str, options: Dict[str, str]):
        super().__init__(name="stf-cog-copy")  # not a daemon: a process that exits first waits for the cleanup
        self.plain, self.target, self.options = plain, target, options
        self.errors: List[str] = []
        self.lock = threading.Lock()
        self.done = self.abandoned = False

    def run(self) -> None:
        try:
            with gdal_errors() as errors:  # GDAL's error log is per thread
                try:
                    rasterio.shutil.copy(self.plain, self.target, driver="COG", **self.options)
                except (OSError, rasterio.errors.RasterioError, CPLE_BaseError) as exc:  # rasterio.shutil: CPLE_*
                    errors.append(str(exc))
            self.errors = errors
        finally:
            os.remove(self.plain)
            with self.lock:
                self.done = True
                abandoned = self.abandoned
            if abandoned:
                _remove(self.target)

    def abandon(self) -> None:
        """The run no longer waits: the copy's output goes as soon as GDAL has finished with it."""
        with self.lock:
            self.abandoned = True
            done = self.done
        if done:
            _remove(self.target)


def _commit(writers: Sequence[GeoTiffWriter]) -> None:
    """Move every finished output into place, all or none: the outputs already there move aside first (on Windows a
    file another program holds open cannot, and then nothing has changed yet), go back if a new one cannot move in,
    and are removed once all are in place. So are the statistics GDAL kept beside the outputs (.aux.xml), which every
    reader would take for the new pixels'."""
    aside: List[Tuple[str, str]] = []
    placed: List[str] = []
    try:  # each step is listed before it is taken: a stop between the two still undoes it
        for writer in writers:
            if os.path.lexists(writer.path):
                folder, name = os.path.split(writer.path)
                aside.append((os.path.join(folder, f".{name}.{secrets.token_hex(4)}{ASIDE}"), writer.path))
                replace_output(writer.path, aside[-1][0], output=writer.path)
        for writer in writers:
            placed.append(writer.path)
            replace_output(writer.partial, writer.path)
    except BaseException:
        for path in placed:
            with suppress(OSError):
                os.remove(path)
        for old, path in aside:
            with suppress(OSError):
                os.replace(old, path)
        raise
    for old, _ in aside:
        with suppress(OSError):  # what stays is removed by the next run on these outputs (remove_left_partials)
            os.remove(old)
    for writer in writers:
        with suppress(OSError):
            os.remove(f"{writer.path}.aux.xml")


def _remove(path: str) -> None:
    if os.path.exists(path):
        os.remove(path)


class PendingOutputs:
    """Outputs written under temporary names and renamed together only when the whole run succeeds.

    On any failure or cancel every partial file is removed, so nothing half-written is left behind.
    """

    def __init__(self, cancel: Optional[Cancel] = None):
        """`cancel`: honoured during the Cloud Optimized GeoTIFF pass, which runs when the block has succeeded."""
        self.writers = []
        self.cancel = cancel

    def create(
        self,
        path: str,
        grid: Grid,
        count: int,
        dtype: str,
        nodata=None,
        descriptions: Optional[Sequence[str]] = None,
        tags: Optional[Dict[str, str]] = None,
        units: Optional[Units] = None,
        cog: bool = False,
    ) -> GeoTiffWriter:
        writer = GeoTiffWriter(path, geotiff_profile(grid, count, dtype, nodata), descriptions, tags or {}, units, cog)
        self.writers.append(writer)
        return writer

    def __enter__(self) -> "PendingOutputs":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            for writer in self.writers:
                writer.close()
            if exc_type is None:
                for writer in self.writers:
                    if writer.cog:
                        writer.to_cog(self.cancel)
                    writer.verify()
                _commit(self.writers)
        except BaseException:
            self._remove_partials()
            raise
        if exc_type is not None:
            self._remove_partials()

    def _remove_partials(self) -> None:
        for writer in self.writers:
            if not writer.dataset.closed:
                with gdal_errors():
                    try:
                        writer.dataset.close()
                    except (OSError, rasterio.errors.RasterioError):
                        pass
            if writer.copying is None or not writer.copying.is_alive():  # a running copy removes its own output
                _remove(writer.partial)
