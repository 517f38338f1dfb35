"""Dask sessions: ``--scheduler`` parsing and a connected client (shared by both sides).

A session knows nothing of encoding or matching: the partner side
(:mod:`linkage.partner.dask_encode`) and the TLU (:mod:`linkage.tlu.dask_match`) submit their
own tasks, and each passes its own ``warm`` function. No kernels, no secret here.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from linkage.errors import LinkageError

DASK_MISSING = "--scheduler needs Dask: pip install 'pprl-linkage[dask]'"

Warn = Callable[[str], None]


@dataclass(frozen=True)
class SchedulerSpec:
    """A parsed ``--scheduler``: ``local`` (LocalCluster of ``n_workers``) or ``address``."""

    kind: str  # "local" or "remote"
    n_workers: int | None = None  # local: None means one per core
    address: str | None = None  # remote: tcp://HOST:PORT or tls://HOST:PORT


def _require_dask() -> None:
    try:
        import dask.distributed  # noqa: F401
    except ImportError:
        raise LinkageError(DASK_MISSING) from None


def parse_scheduler(spec: str) -> SchedulerSpec:
    """Parse ``local``, ``local:N`` or ``tcp://HOST:PORT`` / ``tls://HOST:PORT``.

    Raises :class:`LinkageError` when Dask is not installed or the text is malformed.
    """
    _require_dask()
    s = spec.strip()
    if s == "local":
        return SchedulerSpec("local")
    if s.startswith("local:"):
        n = s[len("local:") :]
        if not n.isdigit() or int(n) < 1:
            raise LinkageError(f"--scheduler {spec!r}: local:N needs a worker count N >= 1")
        return SchedulerSpec("local", n_workers=int(n))
    for scheme in ("tcp://", "tls://"):
        if s.startswith(scheme):
            host, sep, port = s[len(scheme) :].rpartition(":")
            if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise LinkageError(f"--scheduler {spec!r}: expected {scheme}HOST:PORT")
            return SchedulerSpec("remote", address=s)
    raise LinkageError(
        f"--scheduler {spec!r}: expected local, local:N, tcp://HOST:PORT or tls://HOST:PORT"
    )


_LOOPBACK = ("127.", "localhost", "[::1]", "::1")


class DaskSession:
    """A connected Dask client (and the LocalCluster it owns, if any); a context manager."""

    def __init__(
        self,
        spec: SchedulerSpec,
        warn: Warn | None = None,
        warm: Callable[[], object] | None = None,
    ) -> None:
        _require_dask()
        from dask.distributed import Client, LocalCluster

        self.spec = spec
        self.cluster: Any = None
        if spec.kind == "local":
            n = spec.n_workers or (os.cpu_count() or 1)
            self.cluster = LocalCluster(
                n_workers=n,
                threads_per_worker=1,
                processes=True,
                host="127.0.0.1",  # scheduler, workers and HTTP endpoint on loopback only
                dashboard_address=":0",  # any free loopback port (no clash with 8787)
                # one numba thread per single-threaded worker: no oversubscription
                env={"NUMBA_NUM_THREADS": "1"},
            )
            self.client = Client(self.cluster)
        else:
            assert spec.address is not None
            host = spec.address.split("://", 1)[1]
            if spec.address.startswith("tcp://") and not host.startswith(_LOOPBACK) and warn:
                warn(
                    f"--scheduler {spec.address}: plain tcp carries encodings and scores "
                    "unencrypted; use tls:// between machines (docs/scale.md)"
                )
            self.client = Client(spec.address)
        if warm is not None:
            self.client.run(warm)  # e.g. kernels load once per worker, before any timing

    def n_threads(self) -> int:
        return max(1, sum(self.client.nthreads().values()))

    def close(self) -> None:
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()

    def __enter__(self) -> DaskSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_scheduler(
    spec: str | SchedulerSpec, warn: Warn | None = None, warm: Callable[[], object] | None = None
) -> DaskSession:
    """Start a LocalCluster or connect to a scheduler; close the session when done.

    ``warm`` runs once on every worker before any work (the TLU loads its matching kernels
    there; a partner's encoding session loads nothing of the TLU's)."""
    if isinstance(spec, str):
        spec = parse_scheduler(spec)
    return DaskSession(spec, warn, warm)
