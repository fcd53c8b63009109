"""Where the plugin's icons live: beside the code in the zip, under resources/icons in the repository."""
import os

HERE = os.path.dirname(os.path.abspath(__file__))


def icon_path(name: str = "icon.svg") -> str:
    bundled = os.path.join(HERE, "icons", name)
    if os.path.exists(bundled):
        return bundled
    return os.path.join(os.path.dirname(HERE), "resources", "icons", name)
