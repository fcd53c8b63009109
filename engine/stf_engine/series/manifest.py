"""The series' index files: series.json (what each date used and scored) and series.vrt (all fused dates stacked)."""
from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from typing import Dict, Iterable, Optional
from xml.sax.saxutils import escape

import rasterio

from ..core.outputs import replace_output
from ..errors import StfError
from .request import OUTDATED, DateResult

MANIFEST = "series.json"
STACK = "series.vrt"
FOUND = ("validation", "coarse_shift_px")
"""What a run finds of the series itself (its cross-validation, the coarse images' co-registration shift) and
series.json keeps through later runs that fuse no date."""


@dataclass(frozen=True)
class Recorded:
    """What series.json says of an earlier run's folder: each date's record, the settings its dates were fused
    with, and what runs found of the series itself (`FOUND`)."""

    records: Dict[str, dict] = field(default_factory=dict)
    settings: Optional[dict] = None
    found: Dict[str, object] = field(default_factory=dict)


def read_manifest(output_dir: str) -> Recorded:
    """An earlier run's series.json; empty when there is none (or it cannot be read)."""
    path = os.path.join(output_dir, MANIFEST)
    if not os.path.isfile(path):
        return Recorded()
    try:
        with open(path, encoding="utf-8") as handle:
            manifest = json.load(handle)
        return Recorded({record["date"]: record for record in manifest.get("dates", [])}, manifest.get("settings"),
                        {key: manifest[key] for key in FOUND if key in manifest})
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return Recorded()


def recorded_result(output_dir: str, record: dict) -> DateResult:
    """A date's DateResult as series.json records it (file names joined to the folder; unknown keys ignored)."""
    known = {f.name for f in dataclasses.fields(DateResult)}
    values = {key: value for key, value in record.items() if key in known}
    for key in ("fused", "reliability"):
        values[key] = os.path.join(output_dir, values[key]) if values.get(key) else None
    for key in ("references", "inputs"):
        values[key] = tuple(values.get(key) or ())
    return DateResult(**values)


def write_manifest(output_dir: str, dates: Iterable[DateResult], extra: dict) -> str:
    """series.json: the run's facts (`extra`) and one record per date."""
    path = os.path.join(output_dir, MANIFEST)
    records = []
    for result in sorted(dates, key=lambda r: r.date):
        record = dataclasses.asdict(result)
        for key in ("fused", "reliability"):
            record[key] = os.path.basename(record[key]) if record[key] else None
        records.append(record)
    return _write_whole(path, json.dumps({**extra, "dates": records}, indent=2))


def write_stack(output_dir: str, dates: Iterable[DateResult]) -> Optional[str]:
    """series.vrt: every band of every fused or kept date in date order, described '<date> <band name>'; None (and
    no file) when there is none."""
    fused = [r.fused for r in sorted(dates, key=lambda r: r.date) if r.fused and r.status != OUTDATED]
    if not fused:
        return None
    path = os.path.join(output_dir, STACK)
    bands = []
    with rasterio.open(fused[0]) as first:
        width, height, crs, transform, dtype = first.width, first.height, first.crs, first.transform, first.dtypes[0]
        nodata = first.nodata
    kind = {"float32": "Float32", "float64": "Float64", "int16": "Int16", "uint16": "UInt16", "uint8": "Byte",
            "int32": "Int32", "uint32": "UInt32"}[dtype]
    for file in fused:
        day = os.path.basename(file)[len("fused_"):-len(".tif")]
        with rasterio.open(file) as dataset:
            for band in range(1, dataset.count + 1):
                name = dataset.descriptions[band - 1] or f"band {band}"
                nodata_xml = f"<NoDataValue>{nodata}</NoDataValue>" if nodata is not None else ""
                units = (f"<Offset>{dataset.offsets[band - 1]!r}</Offset><Scale>{dataset.scales[band - 1]!r}</Scale>"
                         if (dataset.scales[band - 1], dataset.offsets[band - 1]) != (1.0, 0.0) else "")
                bands.append(
                    f'  <VRTRasterBand dataType="{kind}" band="{len(bands) + 1}">'
                    f"<Description>{escape(day + ' ' + name)}</Description>{nodata_xml}{units}"
                    f'<SimpleSource><SourceFilename relativeToVRT="1">{escape(os.path.basename(file))}</SourceFilename>'
                    f"<SourceBand>{band}</SourceBand></SimpleSource></VRTRasterBand>"
                )
    geo = ", ".join(repr(v) for v in transform.to_gdal())
    text = (f'<VRTDataset rasterXSize="{width}" rasterYSize="{height}">\n'
            f"  <SRS>{escape(crs.to_wkt())}</SRS>\n  <GeoTransform>{geo}</GeoTransform>\n"
            + "\n".join(bands) + "\n</VRTDataset>\n")
    return _write_whole(path, text)


def _write_whole(path: str, text: str) -> str:
    """Write beside `path` and rename, so a reader never sees half a file; the partial file goes on any exit."""
    partial = path + ".partial"
    try:
        try:
            with open(partial, "w", encoding="utf-8") as handle:
                handle.write(text)
        except OSError as exc:
            raise StfError(f"cannot write {path}: {exc.strerror or exc}") from None
        replace_output(partial, path)
    finally:
        if os.path.exists(partial):
            os.remove(partial)
    return path
