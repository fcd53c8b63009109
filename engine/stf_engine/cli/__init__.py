"""The `stf` command line: each subcommand turns its arguments into a request for the public API."""
from .main import main

__all__ = ["main"]
