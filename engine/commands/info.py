"""`stf info`: the methods with their inputs and halo, and the devices found."""
from __future__ import annotations

from .. import roles
from ..device import devices_found
from ..registry import MethodContext, available_methods

NAME = "info"
HELP = "list methods, their inputs and halo, and the devices found"


def add_arguments(parser) -> None:
    parser.add_argument("--ratio", type=int, default=8, help="coarse/fine pixel ratio to size halos for (default 8)")


def run(args) -> int:
    print("methods:")
    for spec in available_methods().values():
        print(f"  {spec.name:<10} {spec.description}")
        required = ", ".join(roles.LABELS[r] for r in spec.required)
        optional = ", ".join(roles.LABELS[r] for r in spec.optional) or "none"
        halos = []
        for given in (spec.required, spec.required + spec.optional):
            context = MethodContext(
                ratio=args.ratio, bands=1, given=frozenset(given), device=None, fine_std=(0.0,)
            )
            halos.append(spec.halo(context))
        halo = f"{halos[1]} px"
        if halos[0] != halos[1]:
            halo += f" ({halos[0]} px without the optional inputs)"
        print(f"  {'':<10} requires: {required}; optional: {optional}; halo at ratio {args.ratio}: {halo}")
        if spec.needs_weights:
            shipped = f"; without --weights it uses the demo checkpoint {spec.default_weights}" if spec.default_weights else ""
            print(f"  {'':<10} needs a weights file (train one with `stf train`){shipped}")
    print("devices: " + "; ".join(devices_found()))
    return 0
