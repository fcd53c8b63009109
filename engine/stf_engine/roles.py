"""Names of the input roles a fusion request can fill."""

COARSE_TARGET = "coarse_target"
FINE_REFERENCE = "fine_reference"
COARSE_REFERENCE = "coarse_reference"
PAN = "pan"

ALL_ROLES = (COARSE_TARGET, FINE_REFERENCE, COARSE_REFERENCE, PAN)
COARSE_ROLES = (COARSE_TARGET, COARSE_REFERENCE)

LABELS = {
    COARSE_TARGET: "coarse target",
    FINE_REFERENCE: "fine reference",
    COARSE_REFERENCE: "coarse reference",
    PAN: "pan band",
}
