"""Ctrl-C during ``map update``: the update is one transaction, so the map is at its previous
version or the new one; these say which, whatever DuckDB turned the interrupt into."""

from __future__ import annotations

import signal
import threading
from pathlib import Path

from linkage.errors import LinkageError

__all__ = ["state_after_interrupt"]


def state_after_interrupt(map_path: str | Path, before: int | None) -> str:
    """What to say after an interrupted update: the map's version now, and whether the update
    was applied (``before``: the version the update opened, None if it never opened the map
    for writing, so it wrote nothing). A second Ctrl-C while the map is read is ignored."""
    from linkage.tlu.linkage_map.store import open_map

    previous = signal.getsignal(signal.SIGINT)
    on_main = threading.current_thread() is threading.main_thread()
    if on_main:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        store = open_map(map_path, wait=10.0)
        try:
            now = store.version
        finally:
            store.close()
    except Exception as exc:  # a damaged or busy map: say so, exit 130
        why = str(exc) if isinstance(exc, LinkageError | OSError) else type(exc).__name__
        return (
            f"interrupted; the state of {map_path} could not be read ({why}); "
            f"`linkage map info {map_path}` shows its version"
        )
    finally:
        if on_main:
            signal.signal(signal.SIGINT, previous)
    applied = before is not None and now > before
    return (
        f"interrupted; the map {map_path} is at version {now} (this update was "
        f"{'' if applied else 'not '}applied)"
    )
