"""Built-in methods; importing this package registers them."""
from . import baselines, starfm  # noqa: F401
from ..models import specs  # noqa: F401,E402  (deep models: marstfn, ganstfm, edcstfn)
