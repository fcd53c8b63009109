"""Small rasters cut from the bundled ones for fast tests."""
from pathlib import Path

import rasterio
from rasterio.windows import Window


def crop(source: Path, folder: Path, size: int, offset: int = 150) -> str:
    """A size×size window of `source` at (offset, offset), written under the same name into `folder`."""
    with rasterio.open(source) as src:
        window = Window(offset, offset, size, size)
        profile = {**src.profile, "width": size, "height": size, "transform": src.window_transform(window)}
        path = folder / source.name
        with rasterio.open(path, "w", **profile) as dst:
            dst.write(src.read(window=window))
    return str(path)


def pixels(path):
    """Every band of a raster, read whole."""
    with rasterio.open(path) as dataset:
        return dataset.read()
