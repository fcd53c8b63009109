"""`stf`: parse arguments, call the engine; user errors are one line and exit 2, bugs show their traceback."""
from __future__ import annotations

import argparse
import logging
import sys
import traceback
from typing import Optional, Sequence

from tqdm import tqdm

from .. import StfError
from . import evaluate, fuse, info, train

COMMANDS = (fuse, evaluate, info, train)
"""Each module offers NAME, HELP, add_arguments(parser) and run(args) -> exit code."""
EXIT_BUG = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class _WarningLines(logging.Handler):
    """The engine's warnings (logged once each) as `warning: …` lines on stderr, clear of the progress bar."""

    def emit(self, record: logging.LogRecord) -> None:
        tqdm.write(f"warning: {record.getMessage()}", file=sys.stderr)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="stf", description="Spatiotemporal fusion of coarse and fine rasters")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.add_arguments(sub.add_parser(command.NAME, help=command.HELP, description=command.HELP))
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    engine_log = logging.getLogger("stf_engine")
    handler = _WarningLines(logging.WARNING)
    engine_log.addHandler(handler)
    engine_log.propagate = False
    command = next(c for c in COMMANDS if c.NAME == args.command)
    try:
        return command.run(args)
    except StfError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception:  # noqa: BLE001  (a bug: show everything, and say so)
        traceback.print_exc()
        print("error: this is a bug in STF, not a problem with your input; please report it with the "
              "traceback above", file=sys.stderr)
        return EXIT_BUG
    finally:
        engine_log.removeHandler(handler)
        engine_log.propagate = True
