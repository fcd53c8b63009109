"""Processing algorithm `stf:fuse_series`: a fused image and a reliability map for every coarse date of a series."""
from __future__ import annotations

from qgis.core import (
    QgsProcessingOutputFile,
    QgsProcessingOutputNumber,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFolderDestination,
    QgsProcessingParameterNumber,
    QgsProcessingParameterString,
)

from .. import results
from .common import (
    EngineAlgorithm, advanced, coarse_resolution_parameter, mask_rules_parameter, options_parameter, scales_help,
    scales_parameter, scheduler_parameter, series_parameters, threads_parameter, workers_parameter,
)

INTEGER = QgsProcessingParameterNumber.Integer
COUNTS = {"FUSED_DATES": "fused", "KEPT_DATES": "kept", "SKIPPED_DATES": "skipped"}
"""Output → the date status it counts."""


class FuseSeriesAlgorithm(EngineAlgorithm):
    """Fuse every coarse date of a dated series with its nearest fine references (quality masks applied)."""

    def __init__(self, engine):
        super().__init__(engine)
        self.enums = {"METHOD": list(engine.list_methods()), "DEVICE": list(engine.DEVICES)}

    def name(self) -> str:
        return "fuse_series"

    def displayName(self) -> str:  # noqa: N802
        return "Fuse a series"

    def shortHelpString(self) -> str:  # noqa: N802
        rules = "".join(f"<li><b>{name}</b>: {text}</li>" for name, text in self.engine.MASK_RULES.items())
        return (
            "Predicts the fine image of every coarse date in the series (or between DATE_FROM and DATE_TO) from the "
            "nearest fine references within MAX_GAP days, one on each side where there is one. The series is "
            "SERIES, a CSV with the columns date, coarse, fine (optionally pan, coarse_mask, fine_mask; paths "
            "relative to the CSV; a date with only a coarse image leaves fine empty), or SERIES_FOLDER, a folder "
            "of rasters named with a date and coarse/fine/pan/coarse_mask/fine_mask (or holding a series.csv). "
            "OUTPUT_FOLDER gets fused_&lt;date&gt;.tif and reliability_&lt;date&gt;.tif (expected error in "
            "reflectance) per date, series.json (MANIFEST) and series.vrt (STACK); a run into a folder with "
            "outputs resumes (the dates done are kept) unless OVERWRITE is set; the folder holds one fusion, so dates "
            "fused there with other settings, or whose files in the series changed, are refused until an "
            "OVERWRITE run fuses them again. MASK_RULES decode the masks, e.g. "
            f"'fine=landsat-qa, coarse=modis-state':<ul>{rules}</ul>{scales_help(self.engine.SCALE_ROLES)} METHOD "
            "and DEVICE also accept the option's name."
        )

    def initAlgorithm(self, config=None):  # noqa: N802
        for parameter in series_parameters("Series list (CSV: date, coarse, fine[, pan, coarse_mask, fine_mask])",
                                           "Or a folder of dated rasters (instead of the CSV)"):
            self.addParameter(parameter)
        methods = self.enums["METHOD"]
        default = methods.index(self.engine.DEFAULT_SERIES_METHOD)
        self.addParameter(QgsProcessingParameterEnum("METHOD", "Method", methods, defaultValue=default))
        for key, label in (("DATE_FROM", "First date, e.g. 2020-03-08 (unset = the series' first)"),
                           ("DATE_TO", "Last date (unset = the series' last)")):
            self.addParameter(QgsProcessingParameterString(key, label, optional=True))
        self.addParameter(
            QgsProcessingParameterNumber(
                "MAX_GAP", "Days a fine reference may lie from the date it predicts", INTEGER,
                self.engine.DEFAULT_MAX_GAP, minValue=1,
            )
        )
        self.addParameter(mask_rules_parameter())
        self.addParameter(scales_parameter())
        self.addParameter(coarse_resolution_parameter())
        self.addParameter(options_parameter())
        self.addParameter(QgsProcessingParameterEnum("DEVICE", "Device", self.enums["DEVICE"], defaultValue=0))
        self.addParameter(advanced(QgsProcessingParameterNumber(
            "TILE_SIZE", "Tile size in pixels (at least 16; 0 = whole raster)", INTEGER, self.engine.DEFAULT_TILE,
            minValue=0,
        )))
        self.addParameter(advanced(QgsProcessingParameterNumber(
            "BATCH", "Tiles per batch (of every date fused together)", INTEGER, self.engine.DEFAULT_BATCH, minValue=1,
        )))
        self.addParameter(advanced(QgsProcessingParameterNumber(
            "DATE_BATCH", f"Dates with the same references fused together (unset = {self.engine.GPU_DATE_BATCH} on a "
            "GPU, 1 on the CPU; more uses more memory)", INTEGER, None, True, 1,
        )))
        self.addParameter(threads_parameter())
        self.addParameter(workers_parameter())
        self.addParameter(scheduler_parameter())
        self.addParameter(
            QgsProcessingParameterBoolean("OVERWRITE", "Fuse again the dates already in the output folder", False)
        )
        self.addParameter(QgsProcessingParameterBoolean("COG", "Write Cloud Optimized GeoTIFFs (slower)", False))
        self.addParameter(QgsProcessingParameterFolderDestination("OUTPUT_FOLDER", "Output folder"))
        self.addOutput(QgsProcessingOutputFile("MANIFEST", "Manifest (series.json)"))
        self.addOutput(QgsProcessingOutputFile("STACK", "Every fused date in one raster (series.vrt)"))
        self.addOutput(QgsProcessingOutputNumber("FUSED_DATES", "Dates fused by this run"))
        self.addOutput(QgsProcessingOutputNumber("KEPT_DATES", "Dates kept from an earlier run"))
        self.addOutput(QgsProcessingOutputNumber("SKIPPED_DATES", "Dates skipped (no fine reference within MAX_GAP)"))

    def text_values(self, parameters, context):
        method = self.enum_name(parameters, "METHOD", context)
        return {
            "mask_rules": self.parsed(parameters, "MASK_RULES", context, self.engine.parse_mask_rules),
            "scales": self.parsed(parameters, "SCALES", context, self.engine.parse_scales),
            "options": self.parsed(parameters, "OPTIONS", context, self.engine.parse_options, method),
        }

    def prepareAlgorithm(self, parameters, context, feedback):  # noqa: N802
        """Before the run, on the main thread: layers showing files in the output folder let go of them."""
        folder = self.parameterAsString(self.values(parameters), "OUTPUT_FOLDER", context)
        self.release_layers(context, feedback, [], [folder])
        return True

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        return self.released_while(lambda: self.fuse_series(parameters, context, feedback))

    def postProcessAlgorithm(self, context, feedback):  # noqa: N802
        """On the main thread after a run that succeeded: the layers released for it show the new files."""
        self.give_back_layers()
        return {}

    def request(self, parameters, context):
        """The SeriesRequest of the parameters."""
        text = {key: self.parameterAsString(parameters, key, context).strip() for key in ("DATE_FROM", "DATE_TO")}
        return self.checked(
            self.engine.SeriesRequest,
            series=self.series(parameters, context),
            output_dir=self.parameterAsString(parameters, "OUTPUT_FOLDER", context),
            method=self.enum_name(parameters, "METHOD", context),
            date_from=text["DATE_FROM"] or None,
            date_to=text["DATE_TO"] or None,
            max_gap=self.number(parameters, "MAX_GAP", context, int),
            **self.text_values(parameters, context),
            coarse_resolution=self.number(parameters, "COARSE_RESOLUTION", context),
            device=self.enum_name(parameters, "DEVICE", context),
            tile=self.number(parameters, "TILE_SIZE", context, int),
            batch=self.number(parameters, "BATCH", context, int),
            date_batch=self.number(parameters, "DATE_BATCH", context, int),
            threads=self.threads(parameters, context),
            **self.cluster(parameters, context),
            overwrite=self.parameterAsBool(parameters, "OVERWRITE", context),
            cog=self.parameterAsBool(parameters, "COG", context),
        )

    def fuse_series(self, parameters, context, feedback):
        request = self.request(self.values(parameters), context)
        result = self.call_engine(self.engine.fuse_series, request, feedback)
        self.push_warnings(feedback, result.warnings)
        self.push_info(feedback, results.series_table(result))
        feedback.pushInfo(results.series_summary(result))
        counts = results.status_counts(result)
        return {
            "OUTPUT_FOLDER": result.output_dir,
            "MANIFEST": result.manifest,
            "STACK": result.stack or "",
            **{key: counts[status] for key, status in COUNTS.items()},
        }
