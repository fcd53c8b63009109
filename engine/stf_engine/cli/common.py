"""What the subcommands share: the progress bar and the syntax of list and role=value arguments."""
from __future__ import annotations

import logging
import sys
from contextlib import contextmanager
from typing import Iterator, Tuple

from tqdm import tqdm

from .. import (
    ALL_ROLES, COARSE_REFERENCE, COARSE_REFERENCE_2, COARSE_TARGET, FINE_REFERENCE, FINE_REFERENCE_2, PAN, StfError,
)

STEPS = 1000
"""Resolution of the progress bar (shown as a percentage)."""


@contextmanager
def progress_bar(description: str) -> Iterator:
    """A tqdm bar on stderr driven by the engine's `progress(fraction, message)` callable, in percent."""
    form = "{desc}: {percentage:3.0f}%|{bar}| {elapsed}<{remaining}{postfix}"
    with tqdm(total=STEPS, desc=description, leave=False, dynamic_ncols=True, bar_format=form) as bar:

        def update(fraction: float, message: str) -> None:
            bar.set_postfix_str(message, refresh=False)
            bar.update(max(0, int(round(fraction * STEPS)) - bar.n))

        yield update


class _WarningLines(logging.Handler):
    """The engine's warnings (logged once each) as `warning: …` lines on stderr, clear of the progress bar."""

    def emit(self, record: logging.LogRecord) -> None:
        tqdm.write(f"warning: {record.getMessage()}", file=sys.stderr)


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


def int_list(text: str) -> Tuple[int, ...]:
    """'3,2,1' → (3, 2, 1)."""
    try:
        return tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise StfError(f"expected comma-separated band numbers, got '{text}'") from None


def float_pair(text: str) -> Tuple[float, float]:
    """'-5.5,-5.3' → (-5.5, -5.3)."""
    parts = text.split(",")
    try:
        if len(parts) == 2:
            return float(parts[0]), float(parts[1])
    except ValueError:
        pass
    raise StfError(f"expected two comma-separated numbers, got '{text}'")


def number(text: str, what: str) -> float:
    """A number, or a fraction such as 500/30."""
    numerator, sep, denominator = text.partition("/")
    try:
        value = float(numerator) / float(denominator) if sep else float(numerator)
    except (ValueError, ZeroDivisionError):
        raise StfError(f"{what}: expected a number or a fraction such as 500/30, got '{text}'") from None
    return value


SCALE_ROLES = {
    "coarse": (COARSE_TARGET, COARSE_REFERENCE, COARSE_REFERENCE_2),
    "coarse-target": (COARSE_TARGET,),
    "coarse-ref": (COARSE_REFERENCE, COARSE_REFERENCE_2),
    "fine": (FINE_REFERENCE, FINE_REFERENCE_2),
    "pan": (PAN,),
}
"""--scale role names and the request roles each one sets."""


def add_unit_arguments(parser):
    """The --bands, --scale and --coarse-res options shared by fuse and train; returns their group."""
    units = parser.add_argument_group("bands and units")
    units.add_argument("--bands", help="coarse bands (1-based) matching the fine bands in order, e.g. 3,2,1")
    units.add_argument(
        "--scale",
        action="append",
        default=[],
        metavar="[ROLE=]FACTOR",
        help="stored value × FACTOR = reflectance; ROLE is coarse, coarse-target, coarse-ref, fine or pan "
        "(default: raster metadata, else 1e-4 for integers and 1 for floats)",
    )
    units.add_argument("--coarse-res", type=float, help="real coarse pixel size in fine-grid units (e.g. 250)")
    return units


def parse_scales(items) -> dict:
    """['fine=1e-4', '1e-4'] → {role: factor}; a factor without a role applies to every role."""
    scales = {}
    for item in items:
        role_name, _, value = item.rpartition("=")
        targets = SCALE_ROLES.get(role_name) if role_name else ALL_ROLES
        if targets is None:
            raise StfError(f"unknown scale role '{role_name}'; use one of {', '.join(SCALE_ROLES)}")
        scales.update({role: number(value, f"--scale {item}") for role in targets})
    return scales
