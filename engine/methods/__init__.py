"""Built-in methods; importing this package registers them."""
from . import baselines, starfm  # noqa: F401
