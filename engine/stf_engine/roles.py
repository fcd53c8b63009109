"""Names of the input roles a fusion request can fill."""

COARSE_TARGET = "coarse_target"
FINE_REFERENCE = "fine_reference"
COARSE_REFERENCE = "coarse_reference"
PAN = "pan"
FINE_REFERENCE_2 = "fine_reference_2"
COARSE_REFERENCE_2 = "coarse_reference_2"
"""A second reference pair, on the other side of the target date (ESTARFM, STARFM with two pairs)."""

ALL_ROLES = (COARSE_TARGET, FINE_REFERENCE, COARSE_REFERENCE, PAN, FINE_REFERENCE_2, COARSE_REFERENCE_2)
COARSE_ROLES = (COARSE_TARGET, COARSE_REFERENCE, COARSE_REFERENCE_2)
FINE_ROLES = (FINE_REFERENCE, FINE_REFERENCE_2)

FLAGS = {
    COARSE_REFERENCE: "--coarse-ref",
    PAN: "--pan",
    FINE_REFERENCE_2: "--fine2",
    COARSE_REFERENCE_2: "--coarse-ref2",
}
"""The command-line flag of each optional role, for messages asking for it (front ends put their own words)."""

SCALE_ROLES = {
    "coarse": (COARSE_TARGET, COARSE_REFERENCE, COARSE_REFERENCE_2),
    "coarse-target": (COARSE_TARGET,),
    "coarse-ref": (COARSE_REFERENCE, COARSE_REFERENCE_2),
    "fine": (FINE_REFERENCE, FINE_REFERENCE_2),
    "pan": (PAN,),
}
"""Scale role names (`--scale fine=1e-4`, Processing's SCALES) and the roles each one sets."""
SCALE_NAMES = {role: next(name for name, named in SCALE_ROLES.items() if role in named) for role in ALL_ROLES}
"""The scale role name a message suggests for each role: the one for all its kind ('coarse', 'fine')."""

LABELS = {
    COARSE_TARGET: "coarse target",
    FINE_REFERENCE: "fine reference",
    COARSE_REFERENCE: "coarse reference",
    PAN: "pan band",
    FINE_REFERENCE_2: "second fine reference",
    COARSE_REFERENCE_2: "second coarse reference",
}


def asked_for(role: str) -> str:
    """A role as a message asks for it: its label, and its flag when it has one ("pan band (--pan)")."""
    return f"{LABELS[role]} ({FLAGS[role]})" if role in FLAGS else LABELS[role]
