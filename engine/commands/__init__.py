"""`stf` subcommands: each module offers `NAME`, `HELP`, `add_arguments(parser)` and `run(args) -> int`."""
from . import fuse, info, train

COMMANDS = (fuse, info, train)

