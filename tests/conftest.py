"""Shared fixtures: the plugin tests' (pytest-qgis) and a one-thread torch for the model tests."""
from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

# Plain `pytest` (not only `make test`) must run headless: set before pytest-qgis starts QGIS.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from helpers.paths import SAMPLE  # noqa: E402


@pytest.fixture
def one_torch_thread():
    """One CPU thread: on a shared 2-core machine a second spinning thread makes small steps far slower."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def sample_paths():
    """The bundled Shenzhen sample by role (MODIS 2002 target, Landsat 2000 reference, Landsat 2002 truth)."""
    return {
        "coarse_target": str(SAMPLE / "MOD09_2002311_SZ_B214_250m.tif"),
        "fine_reference": str(SAMPLE / "L72000306_SZ_B432_30m.tif"),
        "coarse_reference": str(SAMPLE / "MOD09_2000306_SZ_B214_250m.tif"),
        "truth": str(SAMPLE / "L72002311_SZ_B432_30m.tif"),
    }


@pytest.fixture
def sample_layers(qgis_new_project, sample_paths):
    """The sample rasters loaded into the (fresh) project, by role."""
    from qgis.core import QgsProject, QgsRasterLayer

    layers = {role: QgsRasterLayer(path, Path(path).stem) for role, path in sample_paths.items()}
    assert all(layer.isValid() for layer in layers.values())
    QgsProject.instance().addMapLayers(list(layers.values()))
    yield layers
    QgsProject.instance().removeAllMapLayers()
    QgsProject.instance().layerTreeRoot().removeAllChildren()


@pytest.fixture
def iface(qgis_iface, monkeypatch):
    """pytest-qgis's interface plus the Raster menu and toolbar calls real QGIS offers, backed by real widgets."""
    from qgis.PyQt.QtWidgets import QMenu

    window = qgis_iface.mainWindow()
    raster_menu = window.menuBar().findChild(QMenu, "mRasterMenu")
    if raster_menu is None:
        raster_menu = window.menuBar().addMenu("&Raster")
        raster_menu.setObjectName("mRasterMenu")
    toolbar = qgis_iface.addToolBar("Raster")

    def submenu(name, create):
        for action in raster_menu.actions():
            if action.menu() is not None and action.text() == name:
                return action.menu()
        return raster_menu.addMenu(name) if create else None

    def add_to_menu(name, action):
        submenu(name, True).addAction(action)

    def remove_from_menu(name, action):
        menu = submenu(name, False)
        if menu is not None:
            menu.removeAction(action)
            if menu.isEmpty():
                raster_menu.removeAction(menu.menuAction())

    monkeypatch.setattr(qgis_iface, "addPluginToRasterMenu", add_to_menu, raising=False)
    monkeypatch.setattr(qgis_iface, "removePluginRasterMenu", remove_from_menu, raising=False)
    monkeypatch.setattr(qgis_iface, "addRasterToolBarIcon", toolbar.addAction, raising=False)
    monkeypatch.setattr(qgis_iface, "removeRasterToolBarIcon", toolbar.removeAction, raising=False)
    qgis_iface.raster_menu, qgis_iface.raster_toolbar = raster_menu, toolbar
    return qgis_iface


@pytest.fixture
def plugin(iface, qgis_processing):
    """The plugin loaded as QGIS would load it (initGui, which also registers the Processing provider)."""
    import stf_qgis_plugin

    loaded = stf_qgis_plugin.classFactory(iface)
    loaded.initGui()
    yield loaded
    loaded.unload()


def wait_for(condition, timeout: float = 60.0) -> None:
    """Process Qt events until condition() holds (tasks finish on the main thread's event loop)."""
    from qgis.core import QgsApplication

    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met in time")
        QgsApplication.processEvents()
        time.sleep(0.01)


def run_task(plugin, request, training=None, timeout: float = 60.0, started=lambda task: None) -> str:
    """Start the plugin's task for `request` (training first, if given) and wait for it: 'completed' or
    'terminated'. `started(task)` runs as soon as the task exists (to keep its outcome, or to cancel it)."""
    outcomes = []
    task = plugin.start(request, training) if training is not None else plugin.start(request)
    task.taskCompleted.connect(lambda: outcomes.append("completed"))
    task.taskTerminated.connect(lambda: outcomes.append("terminated"))
    started(task)
    wait_for(lambda: outcomes and not plugin.tasks, timeout)
    return outcomes[0]


def files_under(folder) -> list:
    return sorted(str(p.relative_to(folder)) for p in Path(folder).rglob("*")) if os.path.exists(folder) else []


def write_bands(source, target, bands) -> None:
    """Copy some bands of a raster (e.g. to make a band mismatch)."""
    import rasterio

    with rasterio.open(source) as src:
        with rasterio.open(target, "w", **{**src.profile, "count": len(bands)}) as dst:
            dst.write(src.read(bands))


@pytest.fixture
def small_scene(sample_paths, tmp_path):
    """A 256×256 crop of the sample by role, small enough to train a deep model on in seconds."""
    import rasterio
    from rasterio.windows import Window

    window = Window(150, 150, 256, 256)
    crops = {}
    for role in ("coarse_target", "fine_reference", "coarse_reference"):
        crops[role] = str(tmp_path / f"small_{role}.tif")
        with rasterio.open(sample_paths[role]) as src:
            profile = {**src.profile, "width": 256, "height": 256, "transform": src.window_transform(window)}
            with rasterio.open(crops[role], "w", **profile) as dst:
                dst.write(src.read(window=window))
    return crops
