"""Renderers for the fused raster (colour composite, cumulative-cut stretch) and error maps (pseudocolour)."""
from __future__ import annotations

from typing import Optional, Tuple

from osgeo import gdal
from qgis.core import (
    QgsColorRampShader,
    QgsContrastEnhancement,
    QgsGradientColorRamp,
    QgsGradientStop,
    QgsMultiBandColorRenderer,
    QgsRasterLayer,
    QgsRasterMinMaxOrigin,
    QgsRasterShader,
    QgsSingleBandGrayRenderer,
    QgsSingleBandPseudoColorRenderer,
    QgsStyle,
)
from qgis.PyQt.QtGui import QColor

CUT = (0.02, 0.98)
"""Cumulative-cut limits for stretches and ramps."""
SAMPLE = 250_000


def style_fused(layer: QgsRasterLayer) -> None:
    """Three or more bands: RGB composite in a sensible band order; fewer: grey of band 1; both cut-stretched."""
    provider = layer.dataProvider()
    if layer.bandCount() >= 3:
        red, green, blue = composite_bands(layer)
        layer.setRenderer(QgsMultiBandColorRenderer(provider, red, green, blue))
    else:
        layer.setRenderer(QgsSingleBandGrayRenderer(provider, 1))
    layer.setContrastEnhancement(
        QgsContrastEnhancement.StretchToMinimumMaximum,
        QgsRasterMinMaxOrigin.CumulativeCut,
        layer.extent(),
        SAMPLE,
    )
    layer.triggerRepaint()


def composite_bands(layer: QgsRasterLayer) -> Tuple[int, int, int]:
    """Bands tagged or named red/green/blue give true colour; otherwise bands 1-2-3 (e.g. NIR-red-green false colour)."""
    provider = layer.dataProvider()
    names = {"red": None, "green": None, "blue": None}
    interpretations = {3: "red", 4: "green", 5: "blue"}  # QgsRaster.ColorInterpretation values
    for band in range(1, layer.bandCount() + 1):
        key = interpretations.get(provider.colorInterpretation(band))
        description = (provider.generateBandName(band) + " " + (layer.bandName(band) or "")).lower()
        for colour in names:
            if names[colour] is None and (key == colour or colour in description.split()):
                names[colour] = band
    if all(names.values()) and len(set(names.values())) == 3:
        return names["red"], names["green"], names["blue"]
    return 1, 2, 3


def style_error_map(layer: QgsRasterLayer, band: int = 1) -> str:
    """Single-band pseudocolour by the map's STF_RAMP tag (else by its values): diverging around 0 for signed
    residuals, sequential from 0 for magnitudes, two colours for 0/1 masks. Returns the kind used."""
    provider = layer.dataProvider()
    low, high = provider.cumulativeCut(band, CUT[0], CUT[1], layer.extent(), SAMPLE)
    kind = ramp_kind(layer) or ("diverging" if low < 0 < high else "sequential")
    if kind == "mask":
        shader_function = QgsColorRampShader(0, 1, None, QgsColorRampShader.Exact)
        shader_function.setColorRampItemList([
            QgsColorRampShader.ColorRampItem(0, QColor(0, 0, 0, 0), "0"),
            QgsColorRampShader.ColorRampItem(1, QColor("#e31a1c"), "1"),
        ])
        low, high = 0.0, 1.0
    else:
        if kind == "diverging":
            bound = max(abs(low), abs(high)) or 1.0
            low, high = -bound, bound
            ramp = _ramp("RdBu", "#2166ac", "#b2182b", inverted=True, middle="#f7f7f7")
        else:
            low = 0.0 if low >= 0 else low
            ramp = _ramp("Viridis", "#440154", "#fde725")
        if high <= low:
            high = low + 1.0
        shader_function = QgsColorRampShader(low, high, ramp, QgsColorRampShader.Interpolated)
        shader_function.classifyColorRamp(7, band, layer.extent(), provider)
    shader = QgsRasterShader()
    shader.setRasterShaderFunction(shader_function)
    renderer = QgsSingleBandPseudoColorRenderer(provider, band, shader)
    renderer.setClassificationMin(low)
    renderer.setClassificationMax(high)
    layer.setRenderer(renderer)
    layer.triggerRepaint()
    return kind


def ramp_kind(layer: QgsRasterLayer) -> Optional[str]:
    """The engine's STF_RAMP tag (diverging, sequential or mask) of a GeoTIFF error map, if it has one."""
    dataset = gdal.Open(layer.source())
    kind = dataset.GetMetadataItem("STF_RAMP") if dataset is not None else None
    return kind if kind in ("diverging", "sequential", "mask") else None


def _ramp(name: str, start: str, end: str, inverted: bool = False, middle: str = ""):
    """A ramp from QGIS's default style, else a plain gradient with the same ends."""
    ramp = QgsStyle.defaultStyle().colorRamp(name)
    if ramp is None:
        stops = [QgsGradientStop(0.5, QColor(middle))] if middle else []
        return QgsGradientColorRamp(QColor(start), QColor(end), False, stops)
    if inverted:
        ramp.invert()
    return ramp
