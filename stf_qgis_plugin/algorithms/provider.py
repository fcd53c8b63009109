"""The "Spatiotemporal fusion" Processing provider (id `stf`)."""
from __future__ import annotations

from qgis.core import QgsProcessingProvider
from qgis.PyQt.QtGui import QIcon

from ..engine_loader import EngineStatus
from ..paths import icon_path
from .evaluate import EvaluateAlgorithm
from .fuse import FuseAlgorithm
from .fuse_series import FuseSeriesAlgorithm
from .train import TrainAlgorithm


class StfProvider(QgsProcessingProvider):
    """Holds the fusion algorithms; without a usable engine it stays empty (the plugin explains why)."""

    def __init__(self, status: EngineStatus):
        super().__init__()
        self.status = status

    def id(self) -> str:
        return "stf"

    def name(self) -> str:
        return "Spatiotemporal fusion"

    def icon(self) -> QIcon:
        return QIcon(icon_path())

    def supportedOutputRasterLayerExtensions(self):  # noqa: N802
        return ["tif"]

    def loadAlgorithms(self) -> None:  # noqa: N802
        if not self.status.ok:
            return
        for algorithm in (FuseAlgorithm, FuseSeriesAlgorithm, EvaluateAlgorithm, TrainAlgorithm):
            self.addAlgorithm(algorithm(self.status.engine))
