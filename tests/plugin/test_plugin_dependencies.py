"""Without torch the plugin still loads, says how to install torch into QGIS's Python, and installs nothing."""
from __future__ import annotations

import subprocess
import sys

import pytest

pytest.importorskip("qgis")


def import_engine_afresh(monkeypatch):
    """The next load_engine imports the engine again, as a QGIS starting up does (restored after the test)."""
    for name in [n for n in sys.modules if n == "stf_engine" or n.startswith("stf_engine.")]:
        monkeypatch.delitem(sys.modules, name)


@pytest.fixture
def without_torch(monkeypatch):
    """`import torch` fails as on a QGIS without PyTorch; the engine has to be imported afresh."""
    import_engine_afresh(monkeypatch)
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


class BrokenTorch:
    """A torch that is installed but fails as it loads, as on Windows without the Visual C++ runtime."""

    def find_spec(self, name, path=None, target=None):
        if name == "torch":
            raise OSError('[WinError 126] The specified module could not be found. Error loading "c10.dll"')
        return None


def test_a_torch_that_fails_as_it_loads_is_a_message_not_a_plugin_that_cannot_load(iface, qgis_processing,
                                                                                    monkeypatch):
    """Any error of a module the engine imports, not only ImportError, leaves the plugin loaded with the error and
    what to do; the log gets the traceback. Before, classFactory raised and QGIS said the plugin could not load."""
    import stf_qgis_plugin
    from qgis.core import Qgis, QgsApplication

    import_engine_afresh(monkeypatch)
    monkeypatch.delitem(sys.modules, "torch", raising=False)
    monkeypatch.setattr(sys, "meta_path", [BrokenTorch()] + sys.meta_path)
    logged = []
    QgsApplication.messageLog().messageReceived.connect(lambda text, tag, level: logged.append((tag, text)))
    plugin = stf_qgis_plugin.classFactory(iface)
    plugin.initGui()
    try:
        problem = plugin.status.problem
        assert problem.startswith("the fusion engine could not start: loading a module it needs failed with "
                                  "OSError: [WinError 126]")
        assert "Visual C++ Redistributable" in problem and "--index-url https://download.pytorch.org/whl/cpu" in problem
        assert problem in iface.messageBar().get_messages(Qgis.Warning)[-1]
        assert any(tag == "STF" and text.startswith(problem) and "Traceback" in text for tag, text in logged)
        assert QgsApplication.processingRegistry().providerById("stf").algorithms() == []
    finally:
        plugin.unload()


def test_a_torch_too_old_is_named_with_its_version(monkeypatch):
    """Debian 12's own python3-torch is 1.13; the engine needs 2.3 (torch.amp.GradScaler(device))."""
    import torch

    from stf_qgis_plugin.engine_loader import load_engine

    import_engine_afresh(monkeypatch)
    monkeypatch.setattr(torch, "__version__", "1.13.1")
    status = load_engine()
    assert not status.ok
    assert status.problem.startswith("PyTorch 1.13.1 is too old for STF, which needs PyTorch 2.3 or later. Install "
                                     "it into QGIS's own Python")


def test_the_processing_provider_alone_logs_why_it_has_no_algorithms(without_torch, iface, qgis_processing):
    """qgis_process calls initProcessing only and prints the log's warnings: it said just 'Algorithm not found'."""
    import stf_qgis_plugin
    from qgis.core import QgsApplication

    logged = []
    QgsApplication.messageLog().messageReceived.connect(lambda text, tag, level: logged.append((tag, text)))
    plugin = stf_qgis_plugin.classFactory(iface)
    plugin.initProcessing()
    try:
        assert logged == [("STF", plugin.status.problem)]
    finally:
        plugin.unload()


def test_other_missing_modules_are_named():
    import numpy

    from stf_qgis_plugin.engine_loader import missing_module_message

    message = missing_module_message(ModuleNotFoundError("No module named 'rasterio'", name="rasterio"))
    assert "'rasterio'" in message and "sudo apt install python3-rasterio" in message
    assert f"pip install rasterio numpy=={numpy.__version__}" in message  # pip must not replace QGIS's numpy
    message = missing_module_message(ModuleNotFoundError("No module named 'scipy'", name="scipy"))
    assert "'scipy'" in message and "python3-scipy" in message
