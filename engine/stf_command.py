"""The `stf` console script. It lives outside `stf_engine` because importing any part of that package imports torch
first, which takes seconds: only from out here can Ctrl-C during that import end in one line instead of a traceback.
"""
import signal
import sys


def main() -> int:
    """Import the engine and run `stf`; an interrupt the command did not handle (while importing) exits 130."""
    try:
        from stf_engine.cli import main as run_command

        return run_command()
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 128 + signal.SIGINT
