"""What earlier runs left in a series output folder, and what this run may do with it. The folder holds one fusion:
a run keeps the dates fused with its own settings and inputs, and refuses what would leave two fusions side by
side (series.json and series.vrt describe every date in the folder, not only this run's)."""
from __future__ import annotations

import dataclasses
import json
import os
import re
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

from ..errors import StfError
from ..inputs.series_list import Dated, series_files
from .finish import OUTPUT_KINDS, output_names
from .manifest import read_manifest, recorded_result
from .plan import PlannedDate
from .request import OUTDATED, DateResult

STOPPED_OVERWRITE = "an --overwrite run stopped before fusing it again; run again to fuse it"
LOST_RECORD = "written by an earlier run; its record in series.json is lost"
_FUSED = re.compile(rf"{OUTPUT_KINDS[0]}_(\d{{4}}-\d{{2}}-\d{{2}})\.tif")


@dataclass(frozen=True)
class Earlier:
    """The dates earlier runs finished in the folder (both files there): 'kept' when fused with the recorded
    settings, 'outdated' when a stopped --overwrite run had not fused them again; and what series.json says of the
    settings and what runs found of the series (`manifest.FOUND`)."""

    dates: Dict[str, DateResult]
    settings: Optional[dict]
    found: Dict[str, object]


def read_earlier(output_dir: str) -> Earlier:
    """The folder's finished dates with their records (a date whose record is lost is kept with a note)."""
    recorded = read_manifest(output_dir)
    dates = {}
    for name in sorted(os.listdir(output_dir)) if os.path.isdir(output_dir) else ():
        match = _FUSED.fullmatch(name)
        if match and all(os.path.isfile(path) for path in output_names(output_dir, match.group(1))):
            date = match.group(1)
            record = recorded.records.get(date)
            if record is None:
                fused, reliability = output_names(output_dir, date)
                dates[date] = DateResult(date, "kept", fused=fused, reliability=reliability, note=LOST_RECORD)
            else:
                result = recorded_result(output_dir, record)
                dates[date] = dataclasses.replace(result, status=OUTDATED if result.status == OUTDATED else "kept")
    return Earlier(dates, recorded.settings, recorded.found)


def date_inputs(planned: Sequence[PlannedDate], entries: Sequence[Dated]) -> Dict[str, Tuple[str, ...]]:
    """Each planned date's files (`DateResult.inputs`): its own entry's and every reference's, as listed."""
    by_date = {entry.day.isoformat(): entry for entry in entries}
    return {p.date: tuple(os.path.abspath(path) for path in series_files(
        [by_date[p.date]] + [by_date[reference] for reference in p.references]).values()) for p in planned}


def kept_dates(output_dir: str, earlier: Earlier, planned: Sequence[PlannedDate], settings: dict,
               inputs: Dict[str, Tuple[str, ...]], overwrite: bool) -> Tuple[Dict[str, DateResult], List[str]]:
    """The requested dates this run keeps as earlier runs left them, and its warnings; StfError when the run
    would leave the folder holding two fusions (other settings, or other inputs for a date it would keep)."""
    asked = {p.date for p in planned}
    others = sorted(date for date in earlier.dates if date not in asked)
    if earlier.settings not in (None, settings) and earlier.dates and (others or not overwrite):
        raise StfError(_other_settings(output_dir, earlier, settings, others))
    left = [date for date in others if earlier.dates[date].status == OUTDATED]
    warnings = [f"{_count(left)} in {output_dir} ({_listed(left)}) were left by an --overwrite run that stopped "
                f"before fusing them again; they are not in series.vrt until a run that asks for them fuses them"
                ] if left else []
    if overwrite:
        return {}, warnings
    kept = {date: result for date, result in earlier.dates.items() if date in asked and result.status == "kept"}
    changed = sorted(date for date, result in kept.items() if result.inputs and result.inputs != inputs[date])
    if changed:
        raise StfError(f"the series list gives other files for {_count(changed)} already fused in {output_dir} "
                       f"({_listed(changed)}: {_first_change(kept[changed[0]].inputs, inputs[changed[0]])}); add "
                       f"--overwrite to fuse them again (asking for those dates only keeps the others), or choose "
                       f"another output folder")
    return kept, warnings


def _other_settings(output_dir: str, earlier: Earlier, settings: dict, others: List[str]) -> str:
    """Why the folder's dates, fused with other settings, cannot stay next to this run's; what to do instead."""
    recorded = earlier.settings
    other_method = recorded.get("method") != settings["method"]  # then other options go without saying
    changed = [f"{key} {json.dumps(recorded.get(key))} → {json.dumps(value)}" for key, value in settings.items()
               if recorded.get(key) != value and not (key == "options" and other_method)]
    said = f"the {len(earlier.dates)} date(s) already fused in {output_dir} used other settings ({'; '.join(changed)})"
    if not others:
        return f"{said}; add --overwrite to fuse them again with these, or choose another output folder"
    return (f"{said}, and this run does not ask for {_count(others)} of them ({_listed(others)}); to fuse them all "
            f"again with these, ask for every date in the folder with --overwrite, or choose another output folder")


def _first_change(before: Sequence[str], now: Sequence[str]) -> str:
    """One file the list no longer gives or now gives, to show what changed."""
    gone, new = sorted(set(before) - set(now)), sorted(set(now) - set(before))
    return f"it now lists {new[0]}" if new else f"it no longer lists {gone[0]}"


def _count(dates: Sequence[str]) -> str:
    return f"{len(dates)} date(s)" if len(dates) != 1 else "1 date"


def _listed(dates: Sequence[str], most: int = 3) -> str:
    return ", ".join(dates[:most]) + (f" and {len(dates) - most} more" if len(dates) > most else "")
