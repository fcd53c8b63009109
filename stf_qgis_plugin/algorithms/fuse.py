"""Processing algorithm `stf:fuse`: the dialog's inputs as parameters, the fused raster and error maps as outputs."""
from __future__ import annotations

from typing import Dict, Set

from qgis.core import (
    QgsProcessingLayerPostProcessorInterface,
    QgsProcessingOutputNumber,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFile,
    QgsProcessingParameterFolderDestination,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterRasterLayer,
)

from .. import results
from .common import (
    CHECKPOINTS, EngineAlgorithm, coarse_resolution_parameter, options_parameter, scales_help, scales_parameter,
    scheduler_parameter, threads_parameter, workers_parameter,
)

LAYERS = {
    "COARSE_TARGET": ("coarse_target", "Coarse image at the target date", False),
    "FINE_REFERENCE": ("fine_reference", "Fine image at a reference date", False),
    "COARSE_REFERENCE": ("coarse_reference", "Coarse image at the reference date", True),
    "FINE_REFERENCE_2": (
        "fine_reference_2", "Second fine image, on the other side of the target date (two-pair methods: ESTARFM)", True
    ),
    "COARSE_REFERENCE_2": ("coarse_reference_2", "Coarse image at the second fine image's date", True),
    "PAN": ("pan", "Panchromatic band at the target date", True),
    "TRUTH": ("truth", "Truth: fine image at the target date (enables error-vs-truth maps)", True),
}
INTEGER = QgsProcessingParameterNumber.Integer


class FuseAlgorithm(EngineAlgorithm):
    """Fuse a coarse target with a fine reference into a fine image at the target date."""

    def __init__(self, engine):
        super().__init__(engine)
        self.specs = engine.list_methods()
        self.enums = {"METHOD": list(self.specs), "DEVICE": list(engine.DEVICES)}
        self.result = None

    def name(self) -> str:
        return "fuse"

    def displayName(self) -> str:  # noqa: N802
        return "Fuse"

    def shortHelpString(self) -> str:  # noqa: N802
        lines = "".join(
            f"<li><b>{name}</b>: {spec.description}"
            f"{f' (options: {self.engine.describe_options(spec)})' if spec.options else ''}</li>"
            for name, spec in self.specs.items()
        )
        return (
            "Predicts the fine image at the coarse target's date from a fine reference (and, for most methods, "
            f"the coarse image at the reference date). Methods:<ul>{lines}</ul>"
            "auto (preselected) validates the methods on the scene itself and runs the best; the log shows its "
            "table. Two-pair methods (ESTARFM) also take a second fine image on the other side of the target date "
            "and the coarse image of its date. METHOD and DEVICE also accept the option's name, e.g. 'starfm' or "
            "'cpu'. Deep models take a weights file (stf:train writes one); without it they use shipped demo "
            f"weights where installed. {scales_help(self.engine.SCALE_ROLES)}"
        )

    def initAlgorithm(self, config=None):  # noqa: N802
        for key, (_, label, optional) in LAYERS.items():
            self.addParameter(QgsProcessingParameterRasterLayer(key, label, optional=optional))
        methods = self.enums["METHOD"]
        default = methods.index(self.engine.RECOMMENDED_METHOD)
        self.addParameter(QgsProcessingParameterEnum("METHOD", "Method", methods, defaultValue=default))
        self.addParameter(
            QgsProcessingParameterFile("WEIGHTS", "Weights file (deep models)", optional=True, fileFilter=CHECKPOINTS)
        )
        self.addParameter(QgsProcessingParameterEnum("DEVICE", "Device", self.enums["DEVICE"], defaultValue=0))
        self.addParameter(threads_parameter())
        self.addParameter(workers_parameter())
        self.addParameter(scheduler_parameter())
        self.addParameter(
            QgsProcessingParameterNumber(
                "TILE_SIZE", "Tile size in pixels (at least 16; 0 = whole raster)", INTEGER, self.engine.DEFAULT_TILE,
                minValue=0
            )
        )
        self.addParameter(
            QgsProcessingParameterNumber(
                "HALO", "Halo in pixels (unset = the method's receptive radius)", INTEGER, None, True, 0
            )
        )
        self.addParameter(
            QgsProcessingParameterNumber("BATCH", "Tiles per batch", INTEGER, self.engine.DEFAULT_BATCH, minValue=1)
        )
        self.addParameter(scales_parameter())
        self.addParameter(coarse_resolution_parameter())
        self.addParameter(options_parameter())
        self.addParameter(
            QgsProcessingParameterBoolean("UNCERTAINTY", "Also write the uncertainty map (the expected error)", False)
        )
        self.addParameter(QgsProcessingParameterBoolean("COG", "Write a Cloud Optimized GeoTIFF (slower)", False))
        self.addParameter(QgsProcessingParameterRasterDestination("OUTPUT", "Fused raster"))
        self.addParameter(
            QgsProcessingParameterFolderDestination(
                "ERROR_MAPS", "Error maps folder", optional=True, createByDefault=False
            )
        )
        self.addOutput(QgsProcessingOutputNumber("TRUTH_RMSE", "RMSE against the truth (NULL without TRUTH)"))

    def text_values(self, parameters, context):
        method = self.enum_name(parameters, "METHOD", context)
        return {
            "scales": self.parsed(parameters, "SCALES", context, self.engine.parse_scales),
            "options": self.parsed(parameters, "OPTIONS", context, self.engine.parse_options, method),
        }

    def prepareAlgorithm(self, parameters, context, feedback):  # noqa: N802
        """Before the run, on the main thread: layers showing the fused raster or a file in the error-maps folder
        let go of them (an error-maps folder loses the maps of an earlier run that this one does not write); the
        input layers stay open (an output over one of them is refused, naming it)."""
        parameters = self.values(parameters)
        output = self.parameterAsFileOutput(parameters, "OUTPUT", context)  # a temporary output shows in no layer
        maps = self.parameterAsString(parameters, "ERROR_MAPS", context)
        inputs = [self.parameterAsRasterLayer(parameters, key, context) for key in LAYERS]
        self.release_layers(context, feedback, [output], [maps], inputs)
        return True

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        return self.released_while(lambda: self.fuse(parameters, context, feedback))

    def check_request(self, request) -> None:
        """What the fusion would refuse before it reads a pixel: the method's inputs and weights, the outputs (over
        an input, TRUTH without ERROR_MAPS), the device, the cluster."""
        self.checked(self.engine.check_settings, request)

    def request(self, parameters, context, output: str = ""):
        """The FusionRequest of the parameters. `output`: the fused raster as the run names it
        (`parameterAsOutputLayer`, which also tells Processing to load it); unset, as the check names it, which
        registers nothing to load (a temporary output gets another name each time)."""
        paths = {role: self.local_file(parameters, key, context) or None for key, (role, _, _) in LAYERS.items()}
        return self.checked(
            self.engine.FusionRequest,
            output=output or self.parameterAsFileOutput(parameters, "OUTPUT", context),
            method=self.enum_name(parameters, "METHOD", context),
            **self.text_values(parameters, context),
            weights=self.parameterAsFile(parameters, "WEIGHTS", context) or None,
            error_maps_dir=self.parameterAsString(parameters, "ERROR_MAPS", context) or None,
            uncertainty=self.parameterAsBool(parameters, "UNCERTAINTY", context),
            cog=self.parameterAsBool(parameters, "COG", context),
            tile=self.number(parameters, "TILE_SIZE", context, int),
            halo=self.number(parameters, "HALO", context, int),
            batch=self.number(parameters, "BATCH", context, int),
            device=self.enum_name(parameters, "DEVICE", context),
            threads=self.threads(parameters, context),
            **self.cluster(parameters, context),
            coarse_resolution=self.number(parameters, "COARSE_RESOLUTION", context),
            **paths,
        )

    def fuse(self, parameters, context, feedback):
        parameters = self.values(parameters)
        request = self.request(parameters, context, self.parameterAsOutputLayer(parameters, "OUTPUT", context))
        method = request.method
        result = self.call_engine(self.engine.fuse, request, feedback)
        self.push_warnings(feedback, result.warnings)
        for line in results.validation_table(result):
            feedback.pushInfo(line)
        feedback.pushInfo(
            f"{results.chosen(method, result) or result.method} on {result.device} ({result.threads} CPU threads): "
            f"{result.tiles} tile(s), {result.seconds:.1f} s"
        )
        for name, path in result.error_maps.items():
            feedback.pushInfo(f"{name}: {path}")
        if result.truth_rmse is not None:
            feedback.pushInfo(f"RMSE against the truth: {result.truth_rmse:.5g}")
        self.result = result
        return {"OUTPUT": result.output, "ERROR_MAPS": request.error_maps_dir or "", "TRUTH_RMSE": result.truth_rmse}

    def postProcessAlgorithm(self, context, feedback):  # noqa: N802
        """When Processing will load the fused raster (toolbox "Open output file after running",
        processing.runAndLoadResults), it gets the dialog's styling and the error maps in a result group. Layers
        released for the run show their files again first (so Processing finds the layer of a file it shows)."""
        self.give_back_layers()
        if self.result is not None and context.willLoadLayerOnCompletion(self.result.output):
            details = context.layerToLoadOnCompletionDetails(self.result.output)
            details.setPostProcessor(ResultGroupLoader.create(self.result.method, dict(self.result.error_maps)))
        return {}


class ResultGroupLoader(QgsProcessingLayerPostProcessorInterface):
    """Puts a fused raster Processing has loaded into a styled result group with its error maps."""

    alive: Set["ResultGroupLoader"] = set()
    """Processing holds post-processors by pointer only: keep each Python object alive until it has run."""

    def __init__(self, method: str, error_maps: Dict[str, str]):
        super().__init__()
        self.method, self.error_maps = method, error_maps

    @classmethod
    def create(cls, method: str, error_maps: Dict[str, str]) -> "ResultGroupLoader":
        loader = cls(method, error_maps)
        cls.alive.add(loader)
        return loader

    def postProcessLayer(self, layer, context, feedback):  # noqa: N802
        from qgis.core import QgsProject
        from qgis.utils import iface

        project = context.project() or QgsProject.instance()
        try:
            canvas = iface.mapCanvas() if iface else None
            results.group_loaded_layer(layer, self.method, self.error_maps, project, canvas)
        finally:
            ResultGroupLoader.alive.discard(self)  # Processing calls it once per loaded layer
