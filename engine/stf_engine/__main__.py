"""`python -m stf_engine` is the `stf` command."""
import sys

from .cli import main

sys.exit(main())
