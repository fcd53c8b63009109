"""Without torch the plugin still loads, says how to install torch into QGIS's Python, and installs nothing."""
from __future__ import annotations

import subprocess
import sys

import pytest

pytest.importorskip("qgis")


@pytest.fixture
def without_torch(monkeypatch):
    """`import torch` fails as on a QGIS without PyTorch; the engine has to be imported afresh."""
    for name in [n for n in sys.modules if n == "stf_engine" or n.startswith("stf_engine.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "torch", None)

    def refuse(*args, **kwargs):
        raise AssertionError(f"the plugin must not start processes (pip): {args}")

    monkeypatch.setattr(subprocess, "Popen", refuse)


def test_plugin_loads_and_explains_when_torch_is_missing(without_torch, iface, qgis_processing, monkeypatch):
    import stf_qgis_plugin
    import stf_qgis_plugin.plugin as plugin_module
    from qgis.core import Qgis, QgsApplication

    shown = []
    monkeypatch.setattr(plugin_module.QMessageBox, "warning", lambda parent, title, text: shown.append(text))
    plugin = stf_qgis_plugin.classFactory(iface)
    plugin.initGui()
    try:
        assert not plugin.status.ok
        problem = plugin.status.problem
        assert "PyTorch (torch) is not installed" in problem
        assert "no fusion method is available" in problem and "pip install" in problem
        assert "do not install or upgrade them" in problem  # numpy and GDAL stay QGIS's own
        assert problem in iface.messageBar().get_messages(Qgis.Warning)[-1]
        provider = QgsApplication.processingRegistry().providerById("stf")
        assert provider is not None and provider.algorithms() == []
        plugin.show_dialog()
        assert shown == [problem] and plugin.dialog is None
    finally:
        plugin.unload()
    assert QgsApplication.processingRegistry().providerById("stf") is None


def test_other_missing_modules_are_named():
    from stf_qgis_plugin.engine_loader import missing_module_message

    message = missing_module_message(ModuleNotFoundError("No module named 'rasterio'", name="rasterio"))
    assert "'rasterio'" in message and "python3-rasterio" in message
