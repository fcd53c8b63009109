"""Processing algorithm `stf:fuse`: the dialog's inputs as parameters, the fused raster and error maps as outputs."""
from __future__ import annotations

from types import ModuleType

from qgis.core import (
    QgsProcessingAlgorithm,
    QgsProcessingException,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFile,
    QgsProcessingParameterFolderDestination,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterRasterLayer,
)

from .common import engine_callbacks, local_file, names_to_indices

DEVICES = ["auto", "cpu", "cuda"]
LAYERS = {
    "COARSE_TARGET": ("coarse_target", "Coarse image at the target date", False),
    "FINE_REFERENCE": ("fine_reference", "Fine image at a reference date", False),
    "COARSE_REFERENCE": ("coarse_reference", "Coarse image at the reference date", True),
    "PAN": ("pan", "Panchromatic band at the target date", True),
    "TRUTH": ("truth", "Truth: fine image at the target date (enables error-vs-truth maps)", True),
}


class FuseAlgorithm(QgsProcessingAlgorithm):
    """Fuse a coarse target with a fine reference into a fine image at the target date."""

    def __init__(self, engine: ModuleType):
        super().__init__()
        self.engine = engine
        self.methods = list(engine.available_methods())

    def createInstance(self):  # noqa: N802
        return FuseAlgorithm(self.engine)

    def name(self) -> str:
        return "fuse"

    def displayName(self) -> str:  # noqa: N802
        return "Fuse"

    def shortHelpString(self) -> str:  # noqa: N802
        specs = self.engine.available_methods()
        lines = "".join(f"<li><b>{name}</b>: {spec.description}</li>" for name, spec in specs.items())
        return (
            "Predicts the fine image at the coarse target's date from a fine reference (and, for most methods, "
            f"the coarse image at the reference date). Methods:<ul>{lines}</ul>"
            "METHOD and DEVICE also accept the option's name, e.g. 'starfm' or 'cpu'."
        )

    def initAlgorithm(self, config=None):  # noqa: N802
        for key, (_, label, optional) in LAYERS.items():
            self.addParameter(QgsProcessingParameterRasterLayer(key, label, optional=optional))
        default = self.methods.index("starfm") if "starfm" in self.methods else 0
        self.addParameter(QgsProcessingParameterEnum("METHOD", "Method", self.methods, defaultValue=default))
        self.addParameter(
            QgsProcessingParameterFile("WEIGHTS", "Weights file (deep models)", optional=True, fileFilter="*.pt *.pth")
        )
        self.addParameter(QgsProcessingParameterEnum("DEVICE", "Device", DEVICES, defaultValue=0))
        integer = QgsProcessingParameterNumber.Integer
        self.addParameter(QgsProcessingParameterNumber("TILE_SIZE", "Tile size in pixels (0 = whole raster)", integer, 512, minValue=0))
        self.addParameter(
            QgsProcessingParameterNumber("HALO", "Halo in pixels (unset = the method's receptive radius)", integer, None, True, 0)
        )
        self.addParameter(QgsProcessingParameterNumber("BATCH", "Tiles per batch", integer, 4, minValue=1))
        self.addParameter(
            QgsProcessingParameterNumber(
                "COARSE_RESOLUTION",
                "Real coarse pixel size in fine-grid units (unset = from the raster)",
                QgsProcessingParameterNumber.Double,
                None,
                True,
                0,
            )
        )
        self.addParameter(QgsProcessingParameterRasterDestination("OUTPUT", "Fused raster"))
        self.addParameter(
            QgsProcessingParameterFolderDestination("ERROR_MAPS", "Error maps folder", optional=True, createByDefault=False)
        )

    def checkParameterValues(self, parameters, context):  # noqa: N802
        return super().checkParameterValues(self._by_index(parameters), context)

    def _by_index(self, parameters):
        return names_to_indices(parameters, {"METHOD": self.methods, "DEVICE": DEVICES})

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        parameters = self._by_index(parameters)
        paths = {role: local_file(self, parameters, key, context) or None for key, (role, _, _) in LAYERS.items()}
        halo = parameters.get("HALO")
        request = self.engine.FusionRequest(
            output=self.parameterAsOutputLayer(parameters, "OUTPUT", context),
            method=self.methods[self.parameterAsEnum(parameters, "METHOD", context)],
            weights=self.parameterAsFile(parameters, "WEIGHTS", context) or None,
            error_maps_dir=self.parameterAsString(parameters, "ERROR_MAPS", context) or None,
            tile=self.parameterAsInt(parameters, "TILE_SIZE", context),
            halo=None if halo is None else self.parameterAsInt(parameters, "HALO", context),
            batch=self.parameterAsInt(parameters, "BATCH", context),
            device=DEVICES[self.parameterAsEnum(parameters, "DEVICE", context)],
            coarse_resolution=self.parameterAsDouble(parameters, "COARSE_RESOLUTION", context)
            if parameters.get("COARSE_RESOLUTION") is not None
            else None,
            **paths,
        )
        progress, cancel = engine_callbacks(feedback)
        try:
            result = self.engine.fuse(request, progress=progress, cancel=cancel)
        except self.engine.StfError as exc:
            raise QgsProcessingException(str(exc)) from None
        for warning in result.warnings:
            feedback.pushWarning(warning)
        feedback.pushInfo(f"{result.method} on {result.device}: {result.tiles} tile(s), {result.seconds:.1f} s")
        return {"OUTPUT": result.output, "ERROR_MAPS": request.error_maps_dir or ""}
