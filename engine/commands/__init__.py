"""`stf` subcommands: each module offers `NAME`, `HELP`, `add_arguments(parser)` and `run(args) -> int`."""
from . import evaluate, fuse, info, train

COMMANDS = (fuse, evaluate, info, train)

