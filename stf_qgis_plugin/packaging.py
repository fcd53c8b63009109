"""Build the plugin zip (plugin + metadata + LICENSE + icons + bundled engine) and install it into a QGIS profile.

python -m stf_qgis_plugin.packaging build [--out dist]
python -m stf_qgis_plugin.packaging install --plugins-dir DIR [--out dist]   (builds the zip first)
"""
from __future__ import annotations

import argparse
import configparser
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Iterator, Optional, Set, Tuple

PLUGIN = "stf_qgis_plugin"
ROOT = Path(__file__).resolve().parents[1]
SKIPPED_NAMES = {"packaging.py", "stf_engine"}
"""Not shipped from the plugin's folder: this builder, and an engine copy left there (the zip bundles its own)."""
CODE, ICONS, WEIGHTS = (".py",), (".png", ".svg"), (".pt",)
"""What each shipped folder may contribute (a checkpoint list or a scratch file next to the code is not shipped)."""
MAX_BYTES = 25_000_000
"""plugins.qgis.org refuses a larger upload (its limit is in bytes, not MiB)."""


def version() -> str:
    """The plugin's version, from its metadata.txt."""
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(ROOT / "metadata.txt", encoding="utf-8")
    return parser["general"]["version"]


def zip_entries() -> Iterator[Tuple[Path, str]]:
    """(source file, path in the zip) for everything the plugin ships, all under one top folder."""
    tracked = _tracked()
    yield from _tree(ROOT / PLUGIN, PLUGIN, CODE, tracked)
    yield from _tree(ROOT / "engine" / "stf_engine", f"{PLUGIN}/stf_engine", CODE, tracked)
    yield from _tree(ROOT / "resources" / "icons", f"{PLUGIN}/icons", ICONS, tracked)
    if (ROOT / "resources" / "weights").is_dir():  # shipped demo checkpoints, where the engine looks for them
        yield from _tree(ROOT / "resources" / "weights", f"{PLUGIN}/resources/weights", WEIGHTS, tracked)
    yield ROOT / "metadata.txt", f"{PLUGIN}/metadata.txt"
    yield ROOT / "LICENSE", f"{PLUGIN}/LICENSE"


def _tree(folder: Path, prefix: str, suffixes: Tuple[str, ...], tracked: Optional[Set[Path]]
          ) -> Iterator[Tuple[Path, str]]:
    """The folder's files with those suffixes, none hidden (.git, editor files) or in __pycache__, and, in a git
    checkout, only those git tracks: a developer's untracked file must not reach users (plugins.qgis.org refuses a
    zip holding .git or __pycache__)."""
    for path in sorted(folder.rglob("*")):
        parts = path.relative_to(folder).parts
        if (path.is_dir() or not path.name.endswith(suffixes) or (tracked is not None and path not in tracked)
                or any(p.startswith(".") or p in SKIPPED_NAMES or p == "__pycache__" for p in parts)):
            continue
        yield path, f"{prefix}/{'/'.join(parts)}"


def _tracked() -> Optional[Set[Path]]:
    """The files git tracks in the repository, or None outside a git checkout (a source archive), where the
    suffixes alone decide."""
    try:
        listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    return {ROOT / name for name in listed.decode("utf-8").split("\0") if name}


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
        raise SystemExit(f"plugin zip would exceed plugins.qgis.org's limit of {MAX_BYTES:,} bytes")
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
