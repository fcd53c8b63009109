"""STF QGIS plugin: spatiotemporal fusion from a dialog, a background task and the Processing toolbox."""


def classFactory(iface):  # noqa: N802  (QGIS's plugin entry point)
    from .plugin import StfPlugin

    return StfPlugin(iface)
