"""Messages to the QGIS log panel, under the "STF" tab."""
from qgis.core import Qgis, QgsMessageLog

TAG = "STF"


def info(text: str) -> None:
    QgsMessageLog.logMessage(text, TAG, Qgis.Info)


def warning(text: str) -> None:
    QgsMessageLog.logMessage(text, TAG, Qgis.Warning)


def error(text: str) -> None:
    QgsMessageLog.logMessage(text, TAG, Qgis.Critical)
