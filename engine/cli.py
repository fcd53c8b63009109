"""The `stf` command: parse arguments, call the engine, turn user errors into one line and exit code 2."""
from __future__ import annotations

import argparse
import logging
import sys
from typing import Optional, Sequence

from .commands import COMMANDS
from .errors import StfError

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="stf", description="Spatiotemporal fusion of coarse and fine rasters")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.add_arguments(sub.add_parser(command.NAME, help=command.HELP, description=command.HELP))
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.ERROR, format="%(message)s")
    command = next(c for c in COMMANDS if c.NAME == args.command)
    try:
        return command.run(args)
    except (StfError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
