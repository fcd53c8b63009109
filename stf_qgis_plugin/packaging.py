"""Build the plugin zip (plugin + metadata + LICENSE + icons + bundled engine) and install it into a QGIS profile.

python -m stf_qgis_plugin.packaging build [--out dist]
python -m stf_qgis_plugin.packaging install --plugins-dir DIR [--zip PATH]
"""
from __future__ import annotations

import argparse
import configparser
import os
import shutil
import sys
import zipfile
from pathlib import Path
from typing import Iterator, Tuple

PLUGIN = "stf_qgis_plugin"
ROOT = Path(__file__).resolve().parents[1]
SKIPPED_NAMES = {"__pycache__", "packaging.py", ".pytest_cache", "stf_engine"}
SKIPPED_SUFFIXES = (".pyc", ".pyo", ".egg-info")
MAX_BYTES = 25 * 2**20


def version(metadata: Path = ROOT / "metadata.txt") -> str:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(metadata, encoding="utf-8")
    return parser["general"]["version"]


def zip_entries() -> Iterator[Tuple[Path, str]]:
    """(source file, path in the zip) for everything the plugin ships, all under one top folder."""
    yield from _tree(ROOT / PLUGIN, PLUGIN)
    yield from _tree(ROOT / "engine" / "stf_engine", f"{PLUGIN}/stf_engine")
    yield from _tree(ROOT / "resources" / "icons", f"{PLUGIN}/icons")
    if (ROOT / "resources" / "weights").is_dir():  # shipped demo checkpoints, where the engine looks for them
        yield from _tree(ROOT / "resources" / "weights", f"{PLUGIN}/resources/weights")
    yield ROOT / "metadata.txt", f"{PLUGIN}/metadata.txt"
    yield ROOT / "LICENSE", f"{PLUGIN}/LICENSE"


def _tree(folder: Path, prefix: str) -> Iterator[Tuple[Path, str]]:
    for path in sorted(folder.rglob("*")):
        parts = path.relative_to(folder).parts
        if path.is_dir() or any(p in SKIPPED_NAMES or p.endswith(SKIPPED_SUFFIXES) for p in parts):
            continue
        yield path, f"{prefix}/{'/'.join(parts)}"


def build(out_dir: Path) -> Path:
    """Write dist/stf_qgis_plugin-<version>.zip; refuse to leave a zip over the size limit."""
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{PLUGIN}-{version()}.zip"
    partial = target.with_suffix(".zip.partial")
    with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as archive:
        for source, name in zip_entries():
            archive.write(source, name)
    if partial.stat().st_size > MAX_BYTES:
        partial.unlink()
        raise SystemExit(f"plugin zip would exceed {MAX_BYTES // 2**20} MB")
    os.replace(partial, target)
    return target


def install(archive: Path, plugins_dir: Path) -> Path:
    """Replace any installed copy with the zip's contents (what QGIS's "Install from ZIP" does)."""
    plugins_dir.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(plugins_dir / PLUGIN, ignore_errors=True)
    with zipfile.ZipFile(archive) as opened:
        opened.extractall(plugins_dir)
    return plugins_dir / PLUGIN


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stf_qgis_plugin.packaging", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    build_parser = commands.add_parser("build", help="build the plugin zip")
    build_parser.add_argument("--out", default=str(ROOT / "dist"))
    install_parser = commands.add_parser("install", help="build the zip and install it into a QGIS plugins folder")
    install_parser.add_argument("--plugins-dir", required=True)
    install_parser.add_argument("--out", default=str(ROOT / "dist"))
    args = parser.parse_args(argv)
    archive = build(Path(args.out))
    print(archive)
    if args.command == "install":
        print(install(archive, Path(args.plugins_dir).expanduser()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
