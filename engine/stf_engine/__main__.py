"""`python -m stf_engine` is the `stf` command."""
import sys

from .cli import main

if __name__ == "__main__":  # Dask's worker processes import this module again and must not run the command
    sys.exit(main())
