"""Renderers for the fused raster (colour composite, cumulative-cut stretch) and error maps (pseudocolour), and
the names their legends and layers show (band descriptions, units)."""
from __future__ import annotations

from typing import Dict, List, Optional, Tuple

from osgeo import gdal
from qgis.core import (
    QgsColorRampShader,
    QgsContrastEnhancement,
    QgsGradientColorRamp,
    QgsGradientStop,
    QgsLayerTreeLayer,
    QgsMapLayerLegendUtils,
    QgsMultiBandColorRenderer,
    QgsRasterBandStats,
    QgsRasterInterface,
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
    low, high = value_range(layer, band)
    if low < high:  # GDAL has no histogram of a flat map to cut (it fails): its one value is the range
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


def value_range(layer: QgsRasterLayer, band: int = 1) -> Tuple[float, float]:
    """The band's lowest and highest value (statistics only: no histogram); (0, 0) when it has no valid pixel."""
    stats = layer.dataProvider().bandStatistics(band, QgsRasterBandStats.Min | QgsRasterBandStats.Max, layer.extent(),
                                                SAMPLE)
    return (stats.minimumValue, stats.maximumValue) if stats.minimumValue <= stats.maximumValue else (0.0, 0.0)


def is_flat(layer: QgsRasterLayer, band: int = 1) -> bool:
    """One value everywhere (or no valid pixel): a map that shows nothing, e.g. the coarse residual of a run without
    the real coarse pixel size (ratio 1), all zeros."""
    low, high = value_range(layer, band)
    return low == high


def copy_style(source: QgsRasterLayer, target: QgsRasterLayer) -> None:
    """Give `target` the renderer of `source`: the same bands and stretch, or the same colour ramp and range (one
    look for every date of a series, so its layers compare like with like)."""
    renderer = source.renderer().clone()
    if isinstance(renderer, QgsSingleBandPseudoColorRenderer):  # clone() leaves the classification range unset
        renderer.setClassificationMin(source.renderer().classificationMin())
        renderer.setClassificationMax(source.renderer().classificationMax())
    target.setRenderer(renderer)


def ramp_kind(layer: QgsRasterLayer) -> Optional[str]:
    """The engine's STF_RAMP tag (diverging, sequential or mask) of a GeoTIFF error map, if it has one."""
    kind = file_tags(layer).get("STF_RAMP")
    return kind if kind in ("diverging", "sequential", "mask") else None


def file_tags(layer: QgsRasterLayer) -> Dict[str, str]:
    """The dataset-level metadata of the layer's file (the engine's DESCRIPTION, UNITS, STF_RAMP…)."""
    dataset = gdal.Open(layer.source())
    return dict(dataset.GetMetadata() or {}) if dataset is not None else {}


def error_map_name(layer: QgsRasterLayer, name: str) -> str:
    """The error map's name with its units from the engine's UNITS tag (and the band shown, for multi-band maps),
    e.g. "coarse_residual (band 1 of 3, reflectance)"."""
    notes = [f"band 1 of {layer.bandCount()}"] if layer.bandCount() > 1 else []
    units = file_tags(layer).get("UNITS")
    return f"{name} ({', '.join(notes + [units])})" if units else f"{name} ({notes[0]})" if notes else name


UNINFORMATIVE = ("Undefined", "Gray")
"""Colour interpretations that say nothing about a band of a colour composite (GeoTIFF marks band 1 Gray)."""


def band_name(layer: QgsRasterLayer, band: int) -> str:
    """What a band is: QGIS's own name with the file's band description ("Band 1: NIR"); without a description
    the band's colour interpretation when it says something ("Band 1 (Red)"), else "Band 1" (never QGIS's
    misleading "Band 1 (Gray)" for a band shown in a colour channel)."""
    provider = layer.dataProvider()
    name = provider.generateBandName(band)
    if name != QgsRasterInterface.generateBandName(provider, band):  # GDAL's provider added the description
        return name
    interpretation = provider.colorInterpretationName(band)
    return name if interpretation in UNINFORMATIVE else f"{name} ({interpretation})"


def band_title(layer: QgsRasterLayer, band: int) -> str:
    """A pseudocolour legend's heading: the band's description (else its name) and the file's units, e.g.
    "RMS error (reflectance)"."""
    name = band_name(layer, band)
    prefix = QgsRasterInterface.generateBandName(layer.dataProvider(), band) + ": "
    name = name[len(prefix):] if name.startswith(prefix) else name
    units = file_tags(layer).get("UNITS")
    return f"{name} ({units})" if units else name


def legend_labels(layer: QgsRasterLayer) -> List[str]:
    """The labels of the layer's legend entries that name bands, in QGIS's order: the colour channels of an RGB
    composite (red, green, blue), or the heading of a pseudocolour legend; none for other renderers."""
    renderer = layer.renderer()
    if isinstance(renderer, QgsMultiBandColorRenderer):
        channels = (renderer.redBand(), renderer.greenBand(), renderer.blueBand())
        return [band_name(layer, band) for band in channels if band > 0]
    if isinstance(renderer, QgsSingleBandPseudoColorRenderer):
        return [band_title(layer, renderer.band())]
    return []


LABELLED_ENTRIES = 3
"""Legend entries whose labels `label_legend` manages (the three channels of a composite)."""


def label_legend(node: QgsLayerTreeLayer) -> None:
    """Set the legend labels of a layer-tree node from its layer's current renderer (QGIS keeps them as the
    node's legend user labels, saved with the project); entries that no longer name a band get QGIS's own."""
    labels = legend_labels(node.layer()) if node.layer() is not None else []
    for index in range(LABELLED_ENTRIES):
        if index < len(labels):
            QgsMapLayerLegendUtils.setLegendNodeUserLabel(node, index, labels[index])
        else:  # QGIS 3.22 has no call to drop a user label (an empty one is kept); this is the property it reads
            node.removeCustomProperty(f"legend/label-{index}")


def _ramp(name: str, start: str, end: str, inverted: bool = False, middle: str = ""):
    """A ramp from QGIS's default style, else a plain gradient with the same ends."""
    ramp = QgsStyle.defaultStyle().colorRamp(name)
    if ramp is None:
        stops = [QgsGradientStop(0.5, QColor(middle))] if middle else []
        return QgsGradientColorRamp(QColor(start), QColor(end), False, stops)
    if inverted:
        ramp.invert()
    return ramp
