"""Processing algorithm `stf:evaluate`: accuracy of a prediction against the truth, as numbers, tables and plots."""
from __future__ import annotations

import dataclasses
import math

from qgis.core import (
    QgsProcessingOutputNumber,
    QgsProcessingOutputString,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFolderDestination,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterLayer,
)

from .common import EngineAlgorithm, threads_parameter


class EvaluateAlgorithm(EngineAlgorithm):
    """Measure a fused (or any predicted) raster against the fine image observed at the same date."""

    def __init__(self, engine):
        super().__init__(engine)
        self.enums = {"DEVICE": list(engine.DEVICES)}
        self.metrics = list(engine.METRIC_ORDER)
        self.units = dict(engine.METRIC_UNITS)

    def name(self) -> str:
        return "evaluate"

    def displayName(self) -> str:  # noqa: N802
        return "Evaluate against truth"

    def shortHelpString(self) -> str:  # noqa: N802
        return (
            "Compares PREDICTION with TRUTH window by window: RMSE, MAE, PSNR, SSIM, CC, SAM, ERGAS and more, "
            "overall and per band. Each overall measure is an output number (e.g. RMSE) for use in models; "
            "metrics.json, metrics.csv and plots land in OUTPUT_FOLDER. ERGAS needs the coarse/fine pixel-size "
            "ratio: RATIO, else COARSE's pixel size; give RATIO when the coarse image was already resampled to the "
            "fine grid (e.g. 250/30 for 250 m MODIS resampled to 30 m Landsat pixels)."
        )

    def initAlgorithm(self, config=None):  # noqa: N802
        self.addParameter(QgsProcessingParameterRasterLayer("PREDICTION", "Prediction (e.g. a fused raster)"))
        self.addParameter(QgsProcessingParameterRasterLayer("TRUTH", "Truth: fine image at the prediction's date"))
        self.addParameter(
            QgsProcessingParameterRasterLayer("FINE_REFERENCE", "Fine reference (plots only)", optional=True)
        )
        self.addParameter(
            QgsProcessingParameterRasterLayer("COARSE", "Coarse image at the target date (ERGAS, plots)", optional=True)
        )
        self.addParameter(
            QgsProcessingParameterNumber(
                "RATIO", "Coarse/fine pixel-size ratio for ERGAS (unset = from COARSE's pixel size), e.g. 250/30",
                QgsProcessingParameterNumber.Double, None, True, 0,
            )
        )
        self.addParameter(QgsProcessingParameterBoolean("PLOTS", "Write plots", True))
        self.addParameter(QgsProcessingParameterEnum("DEVICE", "Device", self.enums["DEVICE"], defaultValue=0))
        self.addParameter(threads_parameter())
        self.addParameter(QgsProcessingParameterFolderDestination("OUTPUT_FOLDER", "Report folder"))
        for metric in self.metrics:
            self.addOutput(QgsProcessingOutputNumber(metric.upper(), f"{metric} ({self.units[metric]})"))
        self.addOutput(QgsProcessingOutputString("REPORT", "Report (JSON)"))

    def request(self, parameters, context):
        """The EvaluationRequest of the parameters."""
        return self.checked(
            self.engine.EvaluationRequest,
            prediction=self.local_file(parameters, "PREDICTION", context),
            truth=self.local_file(parameters, "TRUTH", context),
            fine_reference=self.local_file(parameters, "FINE_REFERENCE", context) or None,
            coarse=self.local_file(parameters, "COARSE", context) or None,
            out_dir=self.parameterAsString(parameters, "OUTPUT_FOLDER", context),
            plots=self.parameterAsBool(parameters, "PLOTS", context),
            device=self.enum_name(parameters, "DEVICE", context),
            ratio=self.number(parameters, "RATIO", context),
            threads=self.threads(parameters, context),
        )

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        request = self.request(self.values(parameters), context)
        report = self.call_engine(self.engine.evaluate, request, feedback)
        for metric, value in report.overall.items():
            shown = "n/a (undefined on these images)" if math.isnan(value) else \
                f"{value:.6g} {report.units.get(metric, '')}"
            feedback.pushInfo(f"{metric}: {shown}")
        self.push_warnings(feedback, report.notes)
        results = {metric.upper(): number_output(report.overall.get(metric)) for metric in self.metrics}
        in_own_terms = dataclasses.replace(report, notes=[self.in_own_terms(note) for note in report.notes])
        return {**results, "REPORT": in_own_terms.to_json(), "OUTPUT_FOLDER": request.out_dir}


def number_output(value):
    """A measure as a Processing output number: None (QGIS NULL) where the images leave it undefined (NaN), so that
    a model's next step sees NULL, not NaN."""
    return None if value is None or math.isnan(value) else value
