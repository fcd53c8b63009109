"""Raster I/O on rasterio: the fine grid, aligned windowed reading, and atomic windowed GeoTIFF writing."""
