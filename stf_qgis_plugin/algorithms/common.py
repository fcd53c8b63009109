"""What the algorithms share: enum parameters given by name or index, engine feedback, layers as local files."""
from __future__ import annotations

import contextlib
import os
import re
from types import ModuleType
from typing import Callable, Dict, Iterable, List, Optional, Set, Tuple

from qgis.core import (
    QgsMapLayer,
    QgsProcessing,
    QgsProcessingAlgorithm,
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingFeedback,
    QgsProcessingOutputLayerDefinition,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterFile,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterString,
    QgsProperty,
)
from qgis.PyQt.QtCore import QCoreApplication, QObject, QThread, QVariant, pyqtSignal, pyqtSlot

from .. import results
from ..layer_info import file_path, unusable
from ..wording import in_processing_terms

CHECKPOINTS = "STF checkpoints (*.pt);;All files (*.*)"
SERIES_FILTER = "Series lists (*.csv);;All files (*.*)"
THREADS = "THREADS"
SCHEDULER = "SCHEDULER"
WORKERS = "WORKERS"
FILE_DESTINATIONS = (QgsProcessingParameterRasterDestination, QgsProcessingParameterFileDestination)
"""Output parameters of one file, with a default extension."""


def advanced(parameter: QgsProcessingParameterDefinition) -> QgsProcessingParameterDefinition:
    """The parameter shown under the dialog's "Advanced parameters" fold."""
    parameter.setFlags(parameter.flags() | QgsProcessingParameterDefinition.FlagAdvanced)
    return parameter


def threads_parameter() -> QgsProcessingParameterDefinition:
    """THREADS: optional integer ≥ 1, unset = the engine's default (the physical cores); an advanced parameter."""
    return advanced(QgsProcessingParameterNumber(
        THREADS, "CPU threads (unset = the number of physical cores)", QgsProcessingParameterNumber.Integer,
        None, True, 1,
    ))


def scheduler_parameter() -> QgsProcessingParameterDefinition:
    """SCHEDULER: the address of a running Dask scheduler to predict on (advanced; unset = this process)."""
    return advanced(QgsProcessingParameterString(
        SCHEDULER, "Dask scheduler address (e.g. tcp://10.0.0.5:8786; unset = run here)", optional=True))


def workers_parameter() -> QgsProcessingParameterDefinition:
    """WORKERS: how many local Dask worker processes the engine starts (advanced; unset or 0 = this process)."""
    return advanced(QgsProcessingParameterNumber(
        WORKERS, "Dask local worker processes (unset = run here)", QgsProcessingParameterNumber.Integer, None, True, 0,
    ))


def series_parameters(csv_label: str, folder_label: str) -> Tuple[QgsProcessingParameterDefinition, ...]:
    """SERIES (a CSV list) and SERIES_FOLDER (a folder of dated rasters), both optional: a file parameter takes a
    file or a folder, never either, so a series that may be a folder takes two; `series` reads them."""
    return (
        QgsProcessingParameterFile("SERIES", csv_label, optional=True, fileFilter=SERIES_FILTER),
        QgsProcessingParameterFile("SERIES_FOLDER", folder_label, QgsProcessingParameterFile.Folder, optional=True),
    )


def mask_rules_parameter(mode: str = "") -> QgsProcessingParameterDefinition:
    """MASK_RULES: how the series' coarse_mask and fine_mask rasters are decoded, as text the engine parses
    (optional); `mode` names when it applies ('series mode')."""
    when = f"{mode}; " if mode else ""
    return QgsProcessingParameterString(
        "MASK_RULES", f"Mask rules, e.g. fine=landsat-qa, coarse=modis-state ({when}unset = nonzero)", optional=True
    )


def scales_parameter() -> QgsProcessingParameterDefinition:
    """SCALES: stored values to reflectance per role, as text the engine parses (optional; unset = from the rasters'
    metadata). Landsat Collection 2 Level-2 has none there: it needs fine=2.75e-5:-0.2."""
    return QgsProcessingParameterString(
        "SCALES", "Scales to reflectance, e.g. fine=1e-4 or fine=2.75e-5:-0.2", optional=True
    )


def scales_help(roles: Iterable[str]) -> str:
    """What the help of an algorithm with SCALES says of it, naming the scale `roles` (the engine's SCALE_ROLES)."""
    return (
        f"SCALES turn stored values into reflectance, per role ({', '.join(roles)}), e.g. 'fine=1e-4' for "
        "reflectance stored ×10000 or 'fine=2.75e-5:-0.2' (scale:offset) for Landsat Collection 2 Level-2, whose "
        "metadata gives none; a value without a role, e.g. '1e-4', sets every role; unset, the rasters' metadata "
        "gives them (integers without a scale are taken as reflectance ×10000)."
    )


def coarse_resolution_parameter() -> QgsProcessingParameterDefinition:
    """COARSE_RESOLUTION: the coarse sensor's real pixel size, for coarse data already resampled (optional)."""
    return QgsProcessingParameterNumber(
        "COARSE_RESOLUTION", "Real coarse pixel size in fine-grid units (unset = from the raster)",
        QgsProcessingParameterNumber.Double, None, True, 0,
    )


def options_parameter() -> QgsProcessingParameterDefinition:
    """OPTIONS: the method's parameters as key=value text, parsed and checked by the engine."""
    return QgsProcessingParameterString("OPTIONS", "Method options: key=value pairs, e.g. window=15", optional=True)


class HeldLayers(QObject):
    """The project's layers a Processing run made let go of its files (`results.release_layers`), shown again on
    the main thread, where layers may be touched: `give_back` may be called from the run's worker thread (the
    signal then reaches the slot through the main thread's event loop), and a cancel gives them back too (a run
    cancelled before its task started never runs `processAlgorithm`). Giving back twice does nothing."""

    requested = pyqtSignal()
    pending: Set["HeldLayers"] = set()
    """Each one alive until its layers are given back (Processing keeps no Python reference to it)."""

    def __init__(self, released: contextlib.ExitStack, feedback: Optional[QgsProcessingFeedback]):
        super().__init__()  # on the main thread: the object, and so its slot, lives there
        self.released = released
        self.requested.connect(self.restore)
        if feedback is not None:
            feedback.canceled.connect(self.restore)
        HeldLayers.pending.add(self)

    def give_back(self) -> None:
        self.requested.emit()

    @pyqtSlot()
    def restore(self) -> None:
        self.released.close()
        HeldLayers.pending.discard(self)


def unset(value: object) -> bool:
    """Whether a parameter's value leaves it unset: None, QGIS NULL (what qgis_process passes for `HALO=`, and
    Python for NULL) or blank text."""
    if isinstance(value, QVariant):
        return value.isNull()
    return value is None or (isinstance(value, str) and not value.strip())


def with_extension(value: object, extension: str) -> object:
    """An output destination (a path, or Processing's definition of one) named without an extension with
    `extension`; any other value (a temporary output, an expression) as it is."""
    definition = None
    if isinstance(value, QgsProcessingOutputLayerDefinition):
        definition = QgsProcessingOutputLayerDefinition(value)  # a copy: the caller's stays as it was
    path = definition.sink.staticValue() if definition is not None else value
    if not isinstance(path, str) or path in ("", QgsProcessing.TEMPORARY_OUTPUT) or os.path.splitext(path)[1]:
        return value
    if definition is None:
        return f"{path}.{extension}"
    definition.sink = QgsProperty.fromValue(f"{path}.{extension}")
    return definition


def on_main_thread() -> bool:
    return QThread.currentThread() == QCoreApplication.instance().thread()


class EngineAlgorithm(QgsProcessingAlgorithm):
    """An algorithm backed by the engine; its enum parameters (`enums`: name → options) also accept option names."""

    def __init__(self, engine: ModuleType):
        super().__init__()
        self.engine = engine
        self.enums: Dict[str, List[str]] = {}
        self.held: Optional[HeldLayers] = None

    def createInstance(self):  # noqa: N802
        return type(self)(self.engine)

    def checkParameterValues(self, parameters, context):  # noqa: N802
        """Processing's checks, then the engine's checks of the request the parameters make (`request`, then
        `check_request`), so that a typo or a value out of range is refused before the run, and before the steps of
        a model that come first. Cheap, as it runs on the main thread: building a request reads no raster."""
        parameters = self.values(parameters)
        ok, message = super().checkParameterValues(parameters, context)
        if not ok:
            return ok, message
        try:
            self.check_request(self.request(parameters, context))
        except QgsProcessingException as exc:
            return False, str(exc)
        return ok, message

    def request(self, parameters: Dict, context):
        """The engine's request the parameters (as `values` gives them) make; its checks of them raise
        QgsProcessingException naming the parameter. Each algorithm builds its own."""
        raise NotImplementedError

    def check_request(self, request) -> None:
        """The engine's further checks of a request that read no pixel, for `checkParameterValues` (none here)."""

    def text_values(self, parameters: Dict, context) -> Dict[str, object]:
        """The algorithm's text parameters (method options, scales, …) as the engine parses them, by request field;
        QgsProcessingException naming the parameter for one the engine refuses. None here; algorithms add theirs."""
        return {}

    def parsed(self, parameters: Dict, key: str, context, function: Callable, *args):
        """`function(*args, text)` of the text parameter `key`, {} when it is empty; the engine's error on it names
        the parameter. A mapping (from Python, e.g. {"window": 15}) is taken as its key=value pairs, which
        Processing would read as empty text."""
        value = parameters.get(key)
        if isinstance(value, dict):
            text = [f"{name}={item}" for name, item in value.items()]
        else:
            text = self.parameterAsString(parameters, key, context).strip()
        return self.checked(function, *args, text, parameter=key) if text else {}

    def values(self, parameters: Dict) -> Dict:
        """The parameters as the algorithm reads them: an optional one given as NULL or blank text (`unset`) left
        out, as if not given (Processing reads NULL as 0: HALO 0, no halo); enum values given by option name as
        their index; output files named without an extension with the default one."""
        given = {key: value for key, value in parameters.items() if not (unset(value) and self.optional(key))}
        return self.with_extensions(self.by_index(given))

    def optional(self, key: str) -> bool:
        """Whether the algorithm's parameter `key` is optional (an unknown key is not: Processing ignores it)."""
        definition = self.parameterDefinition(key)
        return definition is not None and bool(definition.flags() & QgsProcessingParameterDefinition.FlagOptional)

    def by_index(self, parameters: Dict) -> Dict:
        """Parameters with enum values given by option name, in any case (e.g. METHOD='STARFM'), replaced by their
        index."""
        mapped = dict(parameters)
        for key, options in self.enums.items():
            value = mapped.get(key)
            folded = [option.casefold() for option in options]
            if isinstance(value, str) and value.strip().casefold() in folded:
                mapped[key] = folded.index(value.strip().casefold())
        return mapped

    def with_extensions(self, parameters: Dict) -> Dict:
        """Output files named without an extension (e.g. '/data/fused') with the parameter's default one (.tif,
        .pt), as QGIS's raster algorithms write them: the engine writes GeoTIFFs named .tif and checkpoints named
        .pt only."""
        extended = dict(parameters)
        for definition in self.destinationParameterDefinitions():
            if isinstance(definition, FILE_DESTINATIONS) and definition.name() in extended:
                value = extended[definition.name()]
                extended[definition.name()] = with_extension(value, definition.defaultFileExtension())
        return extended

    def enum_name(self, parameters: Dict, key: str, context) -> str:
        return self.enums[key][self.parameterAsEnum(parameters, key, context)]

    def local_file(self, parameters: Dict, key: str, context) -> str:
        """The file behind a raster-layer parameter (its GDAL path), '' when unset; a layer the engine cannot read
        as QGIS shows it (WMS…, GDAL open options) is an error."""
        layer = self.parameterAsRasterLayer(parameters, key, context)
        if layer is None:
            return ""
        problem = unusable(layer)
        if problem:
            raise QgsProcessingException(f"{self.named(key)}: '{layer.name()}' {problem}")
        return file_path(layer)

    def named(self, key: str) -> str:
        """A parameter as messages name it, like the engine's flags in Processing's words: "'Description' (KEY)",
        the description up to its examples or notes ('Mask rules, e.g. …' → 'Mask rules')."""
        return f"'{re.split(r',|:| [(]', self.parameterDefinition(key).description())[0]}' ({key})"

    def series(self, parameters: Dict, context, required: bool = True) -> str:
        """The series SERIES or SERIES_FOLDER names ('' when neither and not `required`); both is an error."""
        listing = self.parameterAsFile(parameters, "SERIES", context)
        folder = self.parameterAsFile(parameters, "SERIES_FOLDER", context)
        if listing and folder:
            raise QgsProcessingException("give the series as SERIES (a CSV) or as SERIES_FOLDER, not both")
        if required and not (listing or folder):
            raise QgsProcessingException("give the series: SERIES (a CSV) or SERIES_FOLDER")
        return listing or folder

    def number(self, parameters: Dict, key: str, context, kind=float):
        """The number parameter `key` as requests take it: None when unset without a default. Text may be a
        fraction ('250/30', as the labels suggest), which Processing reads as 0; a fraction for an integer
        parameter (2.5) stays one, which Processing would cut to 2, so that the engine refuses it naming the
        parameter."""
        value = parameters.get(key)
        if value is None and self.parameterDefinition(key).defaultValue() is None:
            return None
        if isinstance(value, str):
            number = self.checked(self.engine.parse_number, value.strip(), self.named(key))
        else:
            number = self.parameterAsDouble(parameters, key, context)
        return int(number) if kind is int and number.is_integer() else number

    def threads(self, parameters: Dict, context):
        """The THREADS parameter as the requests take it: None when unset."""
        return self.number(parameters, THREADS, context, int)

    def cluster(self, parameters: Dict, context) -> Dict:
        """WORKERS and SCHEDULER as the requests take them (`workers`, `scheduler`): None when unset (or 0 workers)."""
        return {"workers": self.number(parameters, WORKERS, context, int) or None,
                "scheduler": self.parameterAsString(parameters, SCHEDULER, context).strip() or None}

    def in_own_terms(self, text: str) -> str:
        """An engine message naming this algorithm's parameters where it names command-line flags."""
        return in_processing_terms(text, self.name())

    def checked(self, function: Callable, *args, parameter: str = "", **kwargs):
        """What an engine function that checks its input returns (options, scales, mask rules parsed from a string
        parameter; a request, which refuses a value out of range); its one-line error becomes a Processing error,
        after the `parameter` it is about when given."""
        try:
            return function(*args, **kwargs)
        except self.engine.StfError as exc:
            about = f"{self.named(parameter)}: " if parameter else ""
            raise QgsProcessingException(about + self.in_own_terms(str(exc))) from None

    def call_engine(self, function: Callable, request, feedback: QgsProcessingFeedback):
        """Run an engine entry point with Processing's progress and cancel; engine errors become Processing errors."""
        progress, cancel = engine_callbacks(feedback)
        try:
            return function(request, progress=progress, cancel=cancel)
        except self.engine.StfError as exc:
            raise QgsProcessingException(self.in_own_terms(str(exc))) from None

    def release_layers(self, context: QgsProcessingContext, feedback: Optional[QgsProcessingFeedback],
                       files: List[Optional[str]], folders: List[Optional[str]],
                       inputs: Iterable[Optional[QgsMapLayer]] = ()) -> None:
        """From `prepareAlgorithm`: the project's layers showing `files`, or files in `folders`, but for the
        `inputs`, let go of them until `give_back_layers` (`results.release_layers`), so that the run can replace
        them on Windows. Only on the main thread, where QGIS prepares a run from the toolbox, a batch or
        processing.run: a model run from the toolbox prepares its steps on its worker thread, and there layers must
        not be touched (such a step releases nothing)."""
        project = context.project()
        if project is not None and on_main_thread():
            self.held = HeldLayers(results.release_layers(project, files, folders, inputs), feedback)

    def give_back_layers(self) -> None:
        """The released layers shown again (the new files, or the old ones a failed run left): at once on the main
        thread (`postProcessAlgorithm`, before Processing loads the outputs), else as soon as it gets to it."""
        if self.held is not None:
            self.held.give_back()

    def released_while(self, run: Callable[[], Dict]) -> Dict:
        """`run()`'s results; a run that fails gives the released layers back (QGIS then skips
        `postProcessAlgorithm`)."""
        try:
            return run()
        except BaseException:
            self.give_back_layers()
            raise

    def push_warnings(self, feedback: QgsProcessingFeedback, warnings: Iterable[str]) -> None:
        """The engine's warnings (or notes) as Processing warnings, in this algorithm's terms."""
        for warning in warnings:
            feedback.pushWarning(self.in_own_terms(warning))

    def push_info(self, feedback: QgsProcessingFeedback, lines: Iterable[str]) -> None:
        """Lines holding engine text (a verdict, a table's notes) as Processing information, in this algorithm's
        terms."""
        for line in lines:
            feedback.pushInfo(self.in_own_terms(line))


class FeedbackCancel:
    """The engine's cancel (anything with `is_set()`) read straight from Processing's feedback: the feedback's
    `canceled` signal is not delivered to a run on another thread (its event loop is busy with the run), so a
    cancel must be read where the engine checks it, not wait for a progress report."""

    def __init__(self, feedback: QgsProcessingFeedback):
        self.feedback = feedback

    def is_set(self) -> bool:
        return self.feedback.isCanceled()


def engine_callbacks(feedback: QgsProcessingFeedback) -> Tuple[Callable[[float, str], None], FeedbackCancel]:
    """The engine's progress callable and cancel, driven by (and driving) Processing's feedback; a progress text
    is set when it changes only."""

    shown = None

    def progress(fraction: float, message: str) -> None:
        nonlocal shown
        feedback.setProgress(100.0 * fraction)
        if message != shown:  # Processing's log, and qgis_process, print every text set, changed or not
            shown = message
            feedback.setProgressText(message)

    return progress, FeedbackCancel(feedback)
