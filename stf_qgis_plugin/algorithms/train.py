"""Processing algorithm `stf:train`: train a deep model on one scene (self) or a series, writing a checkpoint."""
from __future__ import annotations

from qgis.core import (
    QgsProcessingOutputNumber,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFile,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterLayer,
)

from .. import results
from .common import (
    CHECKPOINTS, EngineAlgorithm, mask_rules_parameter, scales_help, scales_parameter, series_parameters,
    threads_parameter,
)

LAYERS = {
    "COARSE_TARGET": ("coarse_target", "Coarse image at the target date (self mode)"),
    "FINE_REFERENCE": ("fine_reference", "Fine image at a reference date (self mode)"),
    "COARSE_REFERENCE": ("coarse_reference", "Coarse image at the reference date (self mode)"),
    "PAN": ("pan", "Panchromatic band at the target date (self mode)"),
}
INTEGER = QgsProcessingParameterNumber.Integer


class TrainAlgorithm(EngineAlgorithm):
    """Train MARSTFN, GAN-STFM or EDCSTFN; the checkpoint is the WEIGHTS of stf:fuse."""

    def __init__(self, engine):
        super().__init__(engine)
        self.enums = {
            "MODEL": list(engine.TRAINABLE_MODELS), "MODE": list(engine.TRAINING_MODES), "DEVICE": list(engine.DEVICES)
        }

    def name(self) -> str:
        return "train"

    def displayName(self) -> str:  # noqa: N802
        return "Train a deep model"

    def shortHelpString(self) -> str:  # noqa: N802
        return (
            "self: Wald reduced-resolution training on one scene (the layers below; the coarse/fine ratio must be "
            "at least 2, set COARSE_RESOLUTION when the coarse raster was resampled to the fine grid). "
            "series: dated coarse/fine(/pan) rasters listed in SERIES (a CSV date,coarse,fine[,pan,coarse_mask,"
            "fine_mask]) or in SERIES_FOLDER (a folder of files named with a date and coarse/fine/pan/coarse_mask/"
            "fine_mask); the pixels a date's masks flag are left out of training, the masks decoded by MASK_RULES "
            "as in stf:fuse_series (e.g. 'fine=landsat-qa, coarse=modis-state'; unset = nonzero). Training stops at "
            "the end of the epoch in which MINUTES runs out (0 = no time limit), or earlier when the held-out score "
            "stops improving. The log compares the held-out RMSE with the delta baseline's (smoothed to the held-out "
            "truth's sharpness) and warns when the model does not beat it, or when the scene is too small to show "
            f"that it does. {scales_help(self.engine.SCALE_ROLES)} MODEL, MODE and DEVICE also accept names."
        )

    def initAlgorithm(self, config=None):  # noqa: N802
        self.addParameter(QgsProcessingParameterEnum("MODEL", "Model", self.enums["MODEL"], defaultValue=0))
        self.addParameter(QgsProcessingParameterEnum("MODE", "Training mode", self.enums["MODE"], defaultValue=0))
        for key, (_, label) in LAYERS.items():
            self.addParameter(QgsProcessingParameterRasterLayer(key, label, optional=True))
        for parameter in series_parameters(
            "Series list (CSV: date, coarse, fine[, pan, coarse_mask, fine_mask]; series mode)",
            "Or a folder of dated rasters (series mode, instead of the CSV)",
        ):
            self.addParameter(parameter)
        self.addParameter(mask_rules_parameter("series mode"))
        self.addParameter(scales_parameter())
        self.addParameter(QgsProcessingParameterNumber("EPOCHS", "Epochs", INTEGER, 20, minValue=1))
        self.addParameter(
            QgsProcessingParameterNumber(
                "MINUTES", "Time budget in minutes (0 = no limit)", QgsProcessingParameterNumber.Double,
                self.engine.DEFAULT_TRAINING_MINUTES, minValue=0,
            )
        )
        self.addParameter(
            QgsProcessingParameterNumber(
                "PATCH", "Patch size in pixels (less on a small scene)", INTEGER, 256, minValue=8
            )
        )
        self.addParameter(QgsProcessingParameterNumber("BATCH", "Patches per step", INTEGER, 8, minValue=1))
        self.addParameter(
            QgsProcessingParameterNumber(
                "STEPS", "Steps per epoch (unset = cover the data about once)", INTEGER, None, True, 1
            )
        )
        self.addParameter(
            QgsProcessingParameterNumber(
                "COARSE_RESOLUTION", "Real coarse pixel size in fine-grid units (unset = from the raster)",
                QgsProcessingParameterNumber.Double, None, True, 0,
            )
        )
        self.addParameter(QgsProcessingParameterEnum("DEVICE", "Device", self.enums["DEVICE"], defaultValue=0))
        self.addParameter(threads_parameter())
        self.addParameter(
            QgsProcessingParameterFile("RESUME", "Resume from checkpoint", optional=True, fileFilter=CHECKPOINTS)
        )
        self.addParameter(QgsProcessingParameterFileDestination("OUTPUT", "Checkpoint", "Checkpoints (*.pt)"))
        self.addOutput(QgsProcessingOutputNumber("BEST_EPOCH", "Best epoch"))
        self.addOutput(QgsProcessingOutputNumber("VALIDATION_RMSE", "Validation RMSE of the best epoch (reflectance)"))
        self.addOutput(
            QgsProcessingOutputNumber("VALIDATION_RMSE_DELTA", "The delta baseline's RMSE on the same held-out data")
        )

    def text_values(self, parameters, context):
        return {
            "mask_rules": self.parsed(parameters, "MASK_RULES", context, self.engine.parse_mask_rules),
            "scales": self.parsed(parameters, "SCALES", context, self.engine.parse_scales),
        }

    def request(self, parameters, context):
        """The TrainingRequest of the parameters."""
        paths = {role: self.local_file(parameters, key, context) or None for key, (role, _) in LAYERS.items()}
        return self.checked(
            self.engine.TrainingRequest,
            model=self.enum_name(parameters, "MODEL", context),
            output=self.parameterAsFileOutput(parameters, "OUTPUT", context),
            mode=self.enum_name(parameters, "MODE", context),
            series=self.series(parameters, context, required=False) or None,
            **self.text_values(parameters, context),
            epochs=self.number(parameters, "EPOCHS", context, int),
            minutes=self.number(parameters, "MINUTES", context) or None,
            patch=self.number(parameters, "PATCH", context, int),
            batch=self.number(parameters, "BATCH", context, int),
            steps_per_epoch=self.number(parameters, "STEPS", context, int),
            coarse_resolution=self.number(parameters, "COARSE_RESOLUTION", context),
            device=self.enum_name(parameters, "DEVICE", context),
            threads=self.threads(parameters, context),
            resume=self.parameterAsFile(parameters, "RESUME", context) or None,
            **paths,
        )

    def check_request(self, request) -> None:
        """What training would refuse before it reads a pixel (in self mode, from the layers' metadata: a scene
        too small or a coarse/fine ratio under 2)."""
        self.checked(self.engine.check_training, request)

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        request = self.request(self.values(parameters), context)
        result = self.call_engine(self.engine.train, request, feedback)
        self.push_warnings(feedback, result.warnings)
        scores = results.held_out(result)
        self.push_info(feedback, [
            f"{result.model} on {result.device}: {result.epochs} epoch(s), best {result.best_epoch}, "
            f"{result.seconds:.1f} s" + (f", {scores}" if scores else "")
        ])
        return {
            "OUTPUT": result.checkpoint,
            "BEST_EPOCH": result.best_epoch,
            "VALIDATION_RMSE": result.validation_metrics.get("rmse"),
            "VALIDATION_RMSE_DELTA": result.validation_metrics.get("rmse_delta"),
        }
