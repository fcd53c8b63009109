"""What the subcommands share: the progress bar and the syntax of list and role=value arguments."""
from __future__ import annotations

import logging
import sys
from contextlib import contextmanager
from typing import Iterator, Optional, Tuple

from tqdm import tqdm

from .. import MASK_RULES, SCALE_ROLES, StfError
from ..core.options import split_list
from ..inputs.masks import DEFAULT_MASK_RULE

STEPS = 1000
"""Resolution of the progress bar (shown as a percentage)."""


@contextmanager
def progress_bar(description: str) -> Iterator:
    """A tqdm bar on stderr driven by the engine's `progress(fraction, message)` callable, in percent; none when
    stderr is no terminal, so a captured log holds whole `warning:` and `error:` lines, not bar fragments."""
    form = "{desc}: {percentage:3.0f}%|{bar}| {elapsed}<{remaining}{postfix}"
    with tqdm(total=STEPS, desc=description, leave=False, dynamic_ncols=True, bar_format=form, file=sys.stderr,
              disable=not sys.stderr.isatty()) as bar:

        def update(fraction: float, message: str) -> None:
            bar.set_postfix_str(message, refresh=False)
            bar.update(max(0, int(round(fraction * STEPS)) - bar.n))

        yield update


class _WarningLines(logging.Handler):
    """The engine's warnings as `warning: …` lines on stderr, clear of the progress bar: each once a command, also
    when two steps read the same input and log the same warning (a series list read to check and to train)."""

    def __init__(self, level: int):
        super().__init__(level)
        self.shown = set()

    def emit(self, record: logging.LogRecord) -> None:
        line = f"warning: {record.getMessage()}"
        if line not in self.shown:
            self.shown.add(line)
            tqdm.write(line, file=sys.stderr)


@contextmanager
def warning_lines() -> Iterator[None]:
    """Show the engine's warnings as `warning: …` lines while a command runs (and nowhere else)."""
    engine_log = logging.getLogger("stf_engine")
    handler = _WarningLines(logging.WARNING)
    engine_log.addHandler(handler)
    engine_log.propagate = False
    try:
        yield
    finally:
        engine_log.removeHandler(handler)
        engine_log.propagate = True


def add_threads_argument(parser) -> None:
    parser.add_argument("--threads", type=int, metavar="N",
                        help="CPU threads (default: the number of physical cores)")


def add_mask_rule_argument(parser) -> None:
    """--mask-rule ROLE=RULE (repeatable): how a series' coarse_mask and fine_mask rasters are decoded."""
    parser.add_argument("--mask-rule", action="append", default=[], metavar="ROLE=RULE",
                        help="how coarse or fine mask rasters are decoded: "
                             + "; ".join(f"{name}: {text}" for name, text in MASK_RULES.items())
                             + f" (default {DEFAULT_MASK_RULE})")


def add_cluster_arguments(parser) -> None:
    """--workers and --scheduler: predict on Dask distributed (tiles, or dates in a series, as tasks)."""
    group = parser.add_argument_group("scale-out (Dask distributed)")
    group.add_argument("--workers", type=int, metavar="N", help="start a local Dask cluster of N worker processes")
    group.add_argument("--scheduler", metavar="ADDRESS",
                       help="use a running Dask scheduler, e.g. tcp://10.0.0.5:8786 (workers must see the same paths)")


def int_list(text: str) -> Tuple[int, ...]:
    """'3,2,1' → (3, 2, 1)."""
    try:
        return tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise StfError(f"expected comma-separated band numbers, got '{text}'") from None


def shift_line(shift: Tuple[float, float]) -> str:
    """What --register did to the coarse rasters, as fuse, fuse-series and the demo print it."""
    return f"coarse rasters shifted by {shift[0]:+.2f} px east, {shift[1]:+.2f} px south"


def date_list(text: Optional[str], flag: str) -> Optional[Tuple[str, ...]]:
    """'2020-03-08, 2020-03-17' → ('2020-03-08', '2020-03-17'); None when the flag is not given. A list that names
    no date (`--dates ,`) is refused: reading it as every date would do the opposite of what it asks."""
    if text is None:
        return None
    dates = tuple(split_list(text))
    if not dates:
        raise StfError(f"{flag} '{text}' names no date; give dates such as 2020-03-08,2020-03-17")
    return dates


def float_pair(text: str, flag: str) -> Tuple[float, float]:
    """'-5.5,-5.3' → (-5.5, -5.3); StfError naming the flag otherwise."""
    parts = text.split(",")
    try:
        if len(parts) == 2:
            return float(parts[0]), float(parts[1])
    except ValueError:
        pass
    raise StfError(f"{flag} expects two comma-separated numbers, got '{text}'")


def add_unit_arguments(parser):
    """The --bands, --scale and --coarse-res options shared by fuse and train; returns their group."""
    units = parser.add_argument_group("bands and units")
    units.add_argument("--bands", help="coarse bands (1-based) matching the fine bands in order, e.g. 3,2,1")
    units.add_argument(
        "--scale",
        action="append",
        default=[],
        metavar="[ROLE=]FACTOR[:OFFSET]",
        help="stored value × FACTOR + OFFSET = reflectance, e.g. fine=2.75e-5:-0.2 for Landsat Collection 2 "
        f"Level-2; ROLE is {', '.join(SCALE_ROLES)}, and a value without ROLE sets every "
        "role (default: raster metadata, else 1e-4 for integers and 1 for floats)",
    )
    units.add_argument("--coarse-res", type=float, help="real coarse pixel size in fine-grid units (e.g. 250)")
    return units
