"""Compute building blocks without raster I/O: tiling, blending, PSF, devices, options, progress and cancel."""
