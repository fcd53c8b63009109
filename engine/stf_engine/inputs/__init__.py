"""Bringing a run's rasters onto the fine grid: opening, checking, aligning and co-registering them."""
