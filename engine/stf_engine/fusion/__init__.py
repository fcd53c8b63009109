"""One fusion run: the request, its checks, the tiled prediction and the in-run products (error maps)."""
