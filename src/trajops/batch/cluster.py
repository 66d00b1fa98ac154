"""The Dask adapter: a client on a running scheduler, or on a local cluster started for the job."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

from distributed import Client, LocalCluster

from trajops.errors import ServiceUnavailable, ValidationError

CONNECT_TIMEOUT_S = 10.0
"""Seconds to wait for a remote scheduler."""


def default_workers() -> int:
    """Local worker processes when none are asked for: one per core, at most 8."""
    return max(1, min(8, os.cpu_count() or 1))


@contextmanager
def dask_client(
    *,
    scheduler: str | None,
    workers: int | None,
    processes: bool = True,
    connect_timeout_s: float = CONNECT_TIMEOUT_S,
) -> Iterator[Client]:
    """A Dask client for one job.

    Args:
        scheduler: ``tcp://host:port`` of a running scheduler; its workers must import trajops
            and see the input and output paths. ``None`` starts a local cluster.
        workers: local worker processes (one thread each); ignored with ``scheduler``.
        processes: local workers as processes (True) or threads of this process (tests).
        connect_timeout_s: how long to wait for ``scheduler``.

    Raises:
        ValidationError: both or a bad worker count.
        ServiceUnavailable: the scheduler cannot be reached.
    """
    if scheduler and workers is not None:
        raise ValidationError(
            "give either a scheduler address or a worker count, not both",
            details=[{"loc": ["scheduler"], "msg": "conflicts with workers"}],
        )
    if workers is not None and not 1 <= workers <= 256:
        raise ValidationError(
            f"workers must be between 1 and 256, got {workers}",
            details=[{"loc": ["workers"], "msg": "out of range"}],
        )
    with ExitStack() as stack:
        if scheduler:
            try:
                client = Client(scheduler, timeout=connect_timeout_s)
            except (OSError, TimeoutError) as exc:
                raise ServiceUnavailable(
                    f"Dask scheduler {scheduler} is unreachable: {exc}",
                    details=[{"loc": ["scheduler"], "msg": "unreachable"}],
                ) from None
            stack.callback(client.close)
        else:
            cluster = LocalCluster(
                n_workers=workers or default_workers(),
                threads_per_worker=1,
                processes=processes,
                dashboard_address=None,
                silence_logs=logging.ERROR,
            )
            stack.callback(cluster.close)
            client = Client(cluster)
            stack.callback(client.close)
        yield client
