"""Helpers shared by the subcommands: progress bars and argument parsing."""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator, Tuple

from tqdm import tqdm

from .. import roles


@contextmanager
def progress_bar(description: str) -> Iterator:
    """A tqdm bar on stderr driven by the engine's `progress(fraction, message)` callable."""
    with tqdm(total=1000, desc=description, unit="‰", leave=False, dynamic_ncols=True) as bar:

        def update(fraction: float, message: str) -> None:
            bar.set_postfix_str(message, refresh=False)
            bar.update(max(0, int(round(fraction * 1000)) - bar.n))

        yield update


def int_list(text: str) -> Tuple[int, ...]:
    """'3,2,1' → (3, 2, 1)."""
    try:
        return tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise ValueError(f"expected comma-separated band numbers, got '{text}'") from None


def float_pair(text: str) -> Tuple[float, float]:
    """'-5.5,-5.3' → (-5.5, -5.3)."""
    parts = text.split(",")
    if len(parts) != 2:
        raise ValueError(f"expected two comma-separated numbers, got '{text}'")
    return float(parts[0]), float(parts[1])

SCALE_ROLES = {
    "coarse": (roles.COARSE_TARGET, roles.COARSE_REFERENCE),
    "coarse-target": (roles.COARSE_TARGET,),
    "coarse-ref": (roles.COARSE_REFERENCE,),
    "fine": (roles.FINE_REFERENCE,),
    "pan": (roles.PAN,),
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
    scales = {}
    for item in items:
        role_name, _, value = item.rpartition("=")
        targets = SCALE_ROLES.get(role_name) if role_name else roles.ALL_ROLES
        if targets is None:
            raise ValueError(f"unknown scale role '{role_name}'; use one of {', '.join(SCALE_ROLES)}")
        scales.update({role: float(value) for role in targets})
    return scales


def parse_options(items) -> dict:
    options = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"--option expects KEY=VALUE, got '{item}'")
        options[key] = value
    return options
