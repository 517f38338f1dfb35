"""Ctrl-C noted before it raises: a command can tell an interrupt from the error a library
(DuckDB's "Query interrupted", a failed commit) turned it into.

Used by every command (:func:`linkage.cli.common.handle_errors`: an interrupt exits 130 with
one line, never "internal error") and, nested, by ``map update`` (which also says the map's
version after one).
"""

from __future__ import annotations

import signal
import threading
from typing import Any

__all__ = ["Interrupts"]


class Interrupts:
    """Within the block, Ctrl-C (SIGINT) sets ``seen`` before it raises KeyboardInterrupt.
    Blocks nest: an inner block notes the interrupt, then hands it to the outer one. Main
    thread only; a process that ignores SIGINT (or handles it itself) keeps its handler."""

    def __init__(self) -> None:
        self.seen = False
        self._previous: Any = None

    def __enter__(self) -> Interrupts:
        if threading.current_thread() is not threading.main_thread():
            return self
        previous: Any = signal.getsignal(signal.SIGINT)
        if previous is signal.default_int_handler or getattr(previous, "_notes", False):
            self._previous = previous

            def note(signum: int, frame: Any) -> None:
                self.seen = True
                if previous is signal.default_int_handler:
                    raise KeyboardInterrupt
                previous(signum, frame)  # the outer block notes it too, and raises

            note._notes = True  # type: ignore[attr-defined]
            signal.signal(signal.SIGINT, note)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None
