"""Dask clusters that tests start themselves, listening on this machine only, as the engine's own do."""
from __future__ import annotations


def loopback_cluster(**kwargs):
    """A distributed.LocalCluster of one-thread workers whose web servers take free ports on 127.0.0.1."""
    import distributed

    from stf_engine.fusion.distributed import LOOPBACK

    return distributed.LocalCluster(threads_per_worker=1, dashboard_address=LOOPBACK, worker_dashboard_address=LOOPBACK,
                                    scheduler_kwargs={"dashboard": False}, **kwargs)
