"""The `stf` console script. It lives outside `stf_engine` because importing any part of that package imports torch
first, which takes seconds: only from out here can Ctrl-C during that import end in one line instead of a traceback,
and a missing or too old PyTorch or rasterio be one `error:` line saying what to install.
"""
import signal
import sys

EXIT_USAGE = 2


def main() -> int:
    """Import the engine and run `stf`; an interrupt the command did not handle (while importing) exits 130."""
    try:
        from stf_engine.cli import main as run_command
    except KeyboardInterrupt:
        return _interrupted()
    except ImportError as exc:
        if (exc.name or "").split(".")[0] == "stf_engine":
            raise  # a module of STF itself is missing: a broken install or a bug, shown whole
        print(f"error: {dependency_advice(exc)}", file=sys.stderr)
        return EXIT_USAGE
    try:
        return run_command()
    except KeyboardInterrupt:
        return _interrupted()


def dependency_advice(error: ImportError) -> str:
    """What to do when a module the engine imports is missing (ModuleNotFoundError) or refused (too old)."""
    name = (error.name or "").split(".")[0]
    if not isinstance(error, ModuleNotFoundError):
        return f"{error}: upgrade it in this Python ({sys.executable} -m pip install --upgrade {name})"
    if name == "torch":
        return (f"PyTorch (torch) is not installed in this Python ({sys.executable}); install it, e.g. "
                f"{sys.executable} -m pip install torch --index-url https://download.pytorch.org/whl/cpu")
    return (f"the Python module '{name or error}' the engine needs is not installed in this Python "
            f"({sys.executable}); install it (on Debian or Ubuntu, the package python3-{name})")


def _interrupted() -> int:
    print("error: interrupted", file=sys.stderr)
    return 128 + signal.SIGINT
