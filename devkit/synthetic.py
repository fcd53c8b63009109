"""Small synthetic rasters for engine unit tests (real-data tests use resources/sample and tests/data)."""
from __future__ import annotations

import numpy as np
import rasterio
from rasterio.transform import from_origin

UTM49N = "EPSG:32649"
ORIGIN = (500000.0, 2500000.0)


def write(path, array, transform, crs=UTM49N, nodata=None, dtype=None, **extra) -> str:
    """Write (C, H, W) `array` as a GeoTIFF and return the path as str."""
    array = np.asarray(array)
    dtype = dtype or array.dtype
    with rasterio.open(
        path, "w", driver="GTiff", width=array.shape[2], height=array.shape[1], count=array.shape[0],
        dtype=dtype, crs=crs, transform=transform, nodata=nodata, **extra,
    ) as dst:
        dst.write(array.astype(dtype))
    return str(path)


def fine_transform(pixel=30.0, origin=ORIGIN):
    return from_origin(origin[0], origin[1], pixel, pixel)


def textured_scene(height, width, bands=3, seed=0) -> np.ndarray:
    """Reflectance-like float32 image with edges and texture, values in about [0.02, 0.5]."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    base = 0.2 + 0.1 * np.sin(x / 7.0) * np.cos(y / 11.0)
    fields = (((x // 13) + (y // 17)) % 3).astype(np.float32) * 0.05
    out = np.stack([base + fields * (b + 1) + rng.normal(0, 0.01, (height, width)) for b in range(bands)])
    return np.clip(out, 0.02, 0.5).astype(np.float32)


def scene_set(folder, height=96, width=112, bands=3, ratio=4, dtype="int16"):
    """Fine reference F1, coarse reference C1 and coarse target C2 (coarse at `ratio`× the pixel size)."""
    f1 = textured_scene(height, width, bands, seed=1)
    f2 = f1 * 1.1 + 0.02
    scale = 1e4 if np.issubdtype(np.dtype(dtype), np.integer) else 1.0

    def coarse(image):
        hb, wb = height // ratio, width // ratio
        return image[:, : hb * ratio, : wb * ratio].reshape(bands, hb, ratio, wb, ratio).mean(axis=(2, 4))

    paths = {
        "fine": write(folder / "f1.tif", f1 * scale, fine_transform(), dtype=dtype),
        "coarse_ref": write(folder / "c1.tif", coarse(f1) * scale, fine_transform(30.0 * ratio), dtype=dtype),
        "coarse": write(folder / "c2.tif", coarse(f2) * scale, fine_transform(30.0 * ratio), dtype=dtype),
        "truth": write(folder / "f2.tif", f2 * scale, fine_transform(), dtype=dtype),
    }
    return paths


def class_scene(height, width, bands=3, classes=4, seed=0, noise=0.0):
    """(image (C, H, W) float32, labels (H, W)): land-cover patches, each class with its own spectrum."""
    rng = np.random.default_rng(seed)
    centres = rng.uniform(0, [height, width], size=(classes * 6, 2))
    y, x = np.mgrid[0:height, 0:width]
    nearest = np.argmin((y[..., None] - centres[:, 0]) ** 2 + (x[..., None] - centres[:, 1]) ** 2, axis=-1)
    labels = nearest % classes
    spectra = rng.uniform(0.05, 0.45, size=(classes, bands)).astype(np.float32)
    image = spectra[labels].transpose(2, 0, 1) + rng.normal(0, noise, (bands, height, width))
    return image.astype(np.float32), labels


def coarse_on_fine(image, ratio):
    """Each r×r block (anchored at (0, 0)) replaced by its mean: a perfectly aligned coarse image on the fine grid."""
    bands, height, width = image.shape
    hb, wb = -(-height // ratio), -(-width // ratio)
    padded = np.pad(image, ((0, 0), (0, hb * ratio - height), (0, wb * ratio - width)), mode="edge")
    means = padded.reshape(bands, hb, ratio, wb, ratio).mean(axis=(2, 4))
    return means.repeat(ratio, axis=1).repeat(ratio, axis=2)[:, :height, :width].astype(np.float32)
