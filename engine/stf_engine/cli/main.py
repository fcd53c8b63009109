"""`stf`: parse arguments, call the engine; user errors are one line and exit 2, bugs show their traceback."""
from __future__ import annotations

import argparse
import contextlib
import os
import re
import signal
import sys
import threading
import traceback
from typing import Optional, Sequence

from .. import StfError
from . import evaluate, fuse, fuse_series, info, train
from .common import warning_lines

COMMANDS = (fuse, fuse_series, evaluate, info, train)
"""Each module offers NAME, HELP, add_arguments(parser) and run(args) -> exit code."""
EXIT_BUG = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
EXIT_READER_GONE = 128 + getattr(signal, "SIGPIPE", 13)
"""A pipe's reader left (`stf … | head`): the status of a program SIGPIPE ends, as the shell's own tools give (the
same number on Windows, which has no SIGPIPE)."""
NOTHING_WRITTEN = "no output was written (a file already at the output path is unchanged)"
"""What an interrupted or stopped run left, unless it says otherwise (a series keeps the dates it finished)."""
STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP", "SIGBREAK") if hasattr(signal, name))
"""Handled like Ctrl-C: every partial output is removed and the exit code is 128 + the signal number. Those the
system has: SIGHUP is POSIX only, SIGBREAK (Ctrl-Break) Windows only."""


class Stopped(BaseException):
    """A stop signal arrived; raised where the program is, so every cleanup on the way out runs."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class OutputFailed(Exception):
    """Writing the command's report to standard output failed: its reader is gone or its disk is full."""

    def __init__(self, cause: OSError):
        super().__init__(cause.strerror or str(cause))
        self.cause = cause


class GuardedOutput:
    """Standard output whose failures are `OutputFailed`, told apart from the OSErrors of the work itself."""

    def __init__(self, stream):
        self.stream = stream

    def write(self, text: str) -> int:
        try:
            return self.stream.write(text)
        except OSError as exc:
            raise OutputFailed(exc) from None

    def flush(self) -> None:
        try:
            self.stream.flush()
        except OSError as exc:
            raise OutputFailed(exc) from None

    def __getattr__(self, name: str):
        return getattr(self.stream, name)


NEGATIVE_NUMBERS = re.compile(r"^-\d*\.?\d+(e[-+]?\d+)?(,\s*-?\d*\.?\d+(e[-+]?\d+)?)*$", re.IGNORECASE)
"""A value, not a flag, though it starts with '-': a negative number or list of numbers (`--coarse-shift
-5.66,-4.27`, the shift `--register` prints); argparse's own pattern takes no list and no exponent."""


class Parser(argparse.ArgumentParser):
    """argparse for `stf`: its errors are user errors like the engine's, one `error: …` line and exit 2 (`--help`
    shows the usage), and an int or float flag's value is refused by name when it is no number."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.register("type", int, _whole_number)
        self.register("type", float, _number)
        self._negative_number_matcher = NEGATIVE_NUMBERS

    def error(self, message: str):
        """Raise argparse's complaint ('argument --tile: …') as StfError: `main` prints 'error: --tile: …'."""
        raise StfError(message.removeprefix("argument "))


class CommandParser(Parser):
    """A command's parser: its text flags' values are checked too. (Not the top level's: argparse passes all of a
    command's arguments through the top level's text type, and an empty one is the command's flag to name.)"""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.register("type", None, _given)


def _given(text: str) -> str:
    """A flag's text; an empty one (`--dates=`) is refused, not read as the flag left out."""
    if not text.strip():
        raise argparse.ArgumentTypeError("the value is empty; give one")
    return text


def _whole_number(text: str) -> int:
    """An int flag's value; argparse names the flag before the complaint."""
    try:
        return int(_given(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole number") from None


def _number(text: str) -> float:
    """A float flag's value (nan and inf too: the requests say which values they take)."""
    try:
        return float(_given(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number") from None


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="stf", description="Spatiotemporal fusion of coarse and fine rasters")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=CommandParser)
    for command in COMMANDS:
        command.add_arguments(sub.add_parser(command.NAME, help=command.HELP, description=command.HELP))
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = {signum: signal.getsignal(signum) for signum in STOP_SIGNALS} if in_main_thread else {}
    try:
        args = build_parser().parse_args(argv)
        command = next(c for c in COMMANDS if c.NAME == args.command)
        for signum in previous:
            signal.signal(signum, _stop)
        sys.stdout = GuardedOutput(_escaping(sys.stdout))
        with warning_lines():
            status = command.run(args)
        sys.stdout.flush()  # what is still buffered fails here, not unseen at exit
        return status
    except OutputFailed as failed:
        _discard_output()
        if isinstance(failed.cause, BrokenPipeError):
            return EXIT_READER_GONE
        print(f"error: cannot write to standard output ({failed}); the command's report is lost", file=sys.stderr)
        return EXIT_USAGE
    except StfError as exc:  # a series that failed midway keeps the dates it finished: left_behind says which
        left = getattr(exc, "left_behind", None)
        print(f"error: {exc}" + (f"; {left}" if left else ""), file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt as interrupt:  # a run that keeps finished work (a series' dates) says so in left_behind
        left = getattr(interrupt, "left_behind", NOTHING_WRITTEN)
        print(f"error: interrupted; {left}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Stopped as stop:
        left = getattr(stop, "left_behind", NOTHING_WRITTEN)
        print(f"error: stopped by {stop}; {left}", file=sys.stderr)
        return 128 + stop.signum
    except Exception:  # noqa: BLE001  (a bug: show everything, and say so)
        traceback.print_exc()
        print("error: this is a bug in STF, not a problem with your input; please report it with the "
              "traceback above", file=sys.stderr)
        return EXIT_BUG
    finally:
        sys.stdout = getattr(sys.stdout, "stream", sys.stdout)
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _escaping(stream):
    """`stream` writing what its encoding lacks as escapes (\\u2190) instead of failing: Windows encodes a redirected
    standard output in its ANSI code page, which has no ← or −, and the report failed after the work was done."""
    if getattr(stream, "errors", None) == "strict" and hasattr(stream, "reconfigure"):
        stream.reconfigure(errors="backslashreplace")
    return stream


def _discard_output() -> None:
    """Send what standard output still holds, and Python's flush of it at exit, nowhere: it cannot be written."""
    with contextlib.suppress(OSError, ValueError):  # a stream with no file behind it (captured) holds nothing
        target = sys.stdout.fileno()
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, target)
        os.close(devnull)


def _stop(signum, frame) -> None:
    raise Stopped(signum)
