"""What every result group must look like, whether the dialog's task or Processing added it."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence


def band_description(path) -> str:
    """The first band's description the engine wrote into a raster."""
    import rasterio

    with rasterio.open(path) as dataset:
        return dataset.descriptions[0]


def legend_texts(node) -> list:
    """The legend entries QGIS shows under a layer-tree node (a fresh model over the project's tree)."""
    from qgis.core import QgsLayerTreeModel, QgsProject

    model = QgsLayerTreeModel(QgsProject.instance().layerTreeRoot())
    return [entry.data(0) for entry in model.layerLegendNodes(node)]


def check_result_group(group, method: str, fused_path, maps_dir, shown: str,
                       bands: Sequence[str] = ("Band 1", "Band 2", "Band 3")) -> dict:
    """Assert the group's layers, styles, names, legends and visibility; returns the error-map layers by file stem."""
    from qgis.core import (
        QgsColorRampShader,
        QgsMultiBandColorRenderer,
        QgsRasterMinMaxOrigin,
        QgsSingleBandPseudoColorRenderer,
    )

    assert group.name().startswith(f"Fusion {method} ")
    assert group.isVisible() and group.isExpanded()
    fused_node, *map_nodes = group.findLayers()
    fused = fused_node.layer()
    assert (fused.name(), fused.source()) == (f"fused ({method})", str(fused_path))
    renderer = fused.renderer()
    assert isinstance(renderer, QgsMultiBandColorRenderer)
    assert (renderer.redBand(), renderer.greenBand(), renderer.blueBand()) == (1, 2, 3)
    assert renderer.minMaxOrigin().limits() == QgsRasterMinMaxOrigin.CumulativeCut
    enhancement = renderer.redContrastEnhancement()
    assert 0 < enhancement.minimumValue() < enhancement.maximumValue() < 10000
    assert fused_node.isVisible() and fused_node.isExpanded()
    assert legend_texts(fused_node) == list(bands)

    maps = {Path(node.layer().source()).stem: node for node in map_nodes}
    assert sorted(maps) == sorted(p.stem for p in Path(maps_dir).glob("*.tif"))
    for stem, node in maps.items():
        layer = node.layer()
        assert isinstance(layer.renderer(), QgsSingleBandPseudoColorRenderer), stem
        units = "1 = seam pixel" if stem == "seam_mask" else "reflectance"
        band = f"band 1 of {layer.bandCount()}, " if layer.bandCount() > 1 else ""
        assert layer.name() == f"{stem} ({band}{units})"
        heading, *entries = legend_texts(node)
        assert heading == f"{band_description(layer.source())} ({units})" and entries, stem
        assert layer.abstract(), stem  # the engine's DESCRIPTION tag
        assert (node.isVisible(), node.isExpanded()) == (stem == shown, stem == shown), stem
    residual = maps["coarse_residual"].layer().renderer()
    assert residual.classificationMin() == -residual.classificationMax()
    seams = maps["seam_mask"].layer().renderer().shader().rasterShaderFunction()
    assert seams.colorRampType() == QgsColorRampShader.Exact and len(seams.colorRampItemList()) == 2
    assert maps["coarse_residual_rms"].layer().renderer().classificationMin() == 0
    return {stem: node.layer() for stem, node in maps.items()}
