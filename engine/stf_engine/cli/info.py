"""`stf info`: the methods with their inputs and halo, and the devices found."""
from __future__ import annotations

import argparse

from .. import ROLE_LABELS, StfError, describe_options, devices_found, list_methods, method_halo

NAME = "info"
HELP = "list methods, their inputs and halo, and the devices found"


def add_arguments(parser) -> None:
    parser.add_argument("--ratio", type=int, default=8, help="coarse/fine pixel ratio to size halos for (default 8)")
    parser.add_argument("file", nargs="?", help=argparse.SUPPRESS)  # to say what `stf info FILE` is not


def run(args) -> int:
    if args.file:  # gdalinfo FILE and rio info FILE describe a file: a GIS user may expect the same here
        raise StfError(f"stf info takes no file ({args.file}): it lists the methods and the devices found; "
                       f"inspect a raster with gdalinfo")
    print(listing(args.ratio))
    return 0


def listing(ratio: int) -> str:
    """The methods with their inputs, halo at `ratio` and options, then the devices."""
    lines = ["methods:"]  # every line made before any is printed: a bad --ratio is one error line
    for spec in list_methods().values():
        lines.append(f"  {spec.name:<10} {spec.description}")
        required = ", ".join(ROLE_LABELS[r] for r in spec.required)
        optional = ", ".join(ROLE_LABELS[r] for r in spec.optional) or "none"
        halos = [method_halo(spec, ratio, given) for given in (spec.required, spec.required + spec.optional)]
        halo = f"{halos[1]} px"
        if halos[0] != halos[1]:
            halo += f" ({halos[0]} px without the optional inputs)"
        lines.append(f"  {'':<10} requires: {required}; optional: {optional}; halo at ratio {ratio}: {halo}")
        if spec.needs_weights:
            shipped = f"; without --weights it uses the demo checkpoint {spec.default_weights}" if spec.default_weights else ""
            lines.append(f"  {'':<10} needs a weights file (train one with `stf train`){shipped}")
        if spec.options:
            lines.append(f"  {'':<10} options (--option KEY=VALUE): {describe_options(spec)}")
    lines.append("devices: " + "; ".join(devices_found()))
    return "\n".join(lines)
