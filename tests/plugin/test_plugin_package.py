"""The plugin zip: one top folder, metadata fields, LICENSE, icons, a bundled engine that is the one used."""
from __future__ import annotations

import configparser
import subprocess
import sys
import zipfile

import pytest

from stf_qgis_plugin import packaging

REQUIRED_METADATA = (
    "name", "qgisMinimumVersion", "description", "about", "version", "author", "email",
    "repository", "tracker", "category", "icon", "hasProcessingProvider",
)


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    return packaging.build(tmp_path_factory.mktemp("dist"))


def test_zip_has_one_top_folder_and_the_required_files(archive):
    assert archive.name == f"stf_qgis_plugin-{packaging.version()}.zip"
    names = zipfile.ZipFile(archive).namelist()
    assert {name.split("/")[0] for name in names} == {"stf_qgis_plugin"}
    for required in ("__init__.py", "plugin.py", "metadata.txt", "LICENSE", "icons/icon.png",
                     "algorithms/provider.py", "stf_engine/__init__.py", "stf_engine/fusion/run.py"):
        assert f"stf_qgis_plugin/{required}" in names
    assert not [n for n in names if "__pycache__" in n or n.endswith((".pyc", ".pyo")) or "packaging.py" in n]
    assert not [n for n in names if n.startswith("engine/") or n.startswith("stf_engine/")]
    assert archive.stat().st_size < 25_000_000  # plugins.qgis.org's upload limit, in bytes
    shipped = sorted((packaging.ROOT / "resources" / "weights").glob("*.pt"))
    assert all(f"stf_qgis_plugin/resources/weights/{p.name}" in names for p in shipped)


def test_only_the_tracked_files_a_plugin_needs_are_shipped(tmp_path, monkeypatch):
    """Editor, VCS and cache files, a checkpoint list, and a scratch checkpoint git does not track stay out of the
    zip: everything under the shipped folders went in, and plugins.qgis.org refuses a zip holding .git."""
    files = ["stf_qgis_plugin/__init__.py", "stf_qgis_plugin/dialog.py.orig", "stf_qgis_plugin/.dialog.py.swp",
             "stf_qgis_plugin/.git/HEAD", "stf_qgis_plugin/__pycache__/plugin.cpython-311.pyc",
             "stf_qgis_plugin/untracked.py", "engine/stf_engine/__init__.py", "engine/stf_engine/.ruff_cache/x",
             "resources/icons/icon.png", "resources/weights/edcstfn.pt", "resources/weights/scratch.pt",
             "resources/weights/series.csv", "metadata.txt", "LICENSE"]
    for name in files:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("[general]\nversion=9.9\n" if name == "metadata.txt" else name)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-C", str(tmp_path)]
    subprocess.run(git + ["init", "-q"], check=True)
    subprocess.run(git + ["add", "--force"] + [n for n in files if "untracked" not in n and "scratch" not in n],
                   check=True)
    monkeypatch.setattr(packaging, "ROOT", tmp_path)
    names = zipfile.ZipFile(packaging.build(tmp_path / "dist")).namelist()
    assert sorted(names) == sorted([
        "stf_qgis_plugin/__init__.py", "stf_qgis_plugin/stf_engine/__init__.py", "stf_qgis_plugin/icons/icon.png",
        "stf_qgis_plugin/resources/weights/edcstfn.pt", "stf_qgis_plugin/metadata.txt", "stf_qgis_plugin/LICENSE"])


def test_metadata_has_every_field_plugins_qgis_org_requires(archive):
    with zipfile.ZipFile(archive) as opened:
        parser = configparser.ConfigParser(interpolation=None)
        parser.read_string(opened.read("stf_qgis_plugin/metadata.txt").decode("utf-8"))
        general = parser["general"]
        assert [field for field in REQUIRED_METADATA if not general.get(field, "").strip()] == []
        assert general["qgisMinimumVersion"] == "3.22"
        assert general["category"] == "Raster"
        assert general["hasProcessingProvider"] == "yes"
        assert f"stf_qgis_plugin/{general['icon']}" in opened.namelist()
        assert "STF contributors" in opened.read("stf_qgis_plugin/LICENSE").decode()


def test_installed_zip_uses_its_bundled_engine(archive, tmp_path, sample_paths):
    plugin_dir = packaging.install(archive, tmp_path / "plugins")
    assert (plugin_dir / "metadata.txt").exists()
    script = (
        "import sys; sys.path.insert(0, sys.argv[1])\n"
        "from stf_qgis_plugin.engine_loader import load_engine\n"
        "status = load_engine(); engine = status.engine\n"
        "assert engine.__name__ == 'stf_qgis_plugin.stf_engine', engine.__name__\n"
        "assert engine.__file__.startswith(sys.argv[1]), engine.__file__\n"
        "r = engine.fuse(engine.FusionRequest(coarse_target=sys.argv[2], fine_reference=sys.argv[3], "
        "output=sys.argv[4], method='cubic', device='cpu'))\n"
        "assert 'qgis' not in sys.modules and 'PyQt5' not in sys.modules\n"
        "print(r.method, r.width)\n"
    )
    out = tmp_path / "fused.tif"
    completed = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "plugins"), sample_paths["coarse_target"],
         sample_paths["fine_reference"], str(out)],
        capture_output=True, text=True, timeout=120,
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.split() == ["cubic", "500"] and out.exists()
