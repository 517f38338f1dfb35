"""The ``linkage`` console script (``[project.scripts]`` in pyproject.toml).

The command line's imports take about 0.3 s; Ctrl-C during them exits 130 with one line, as
Ctrl-C during a command does (:func:`linkage.cli.common.handle_errors`), not with a Python
traceback. This module imports nothing itself, so the window before that is milliseconds.
"""

from __future__ import annotations

import sys

EXIT_INTERRUPTED = 130  # linkage.cli.common.EXIT_INTERRUPTED (not imported: that is the slow part)


def main() -> None:
    """Import the command line, then run it."""
    try:
        from linkage.cli import main as cli
    except KeyboardInterrupt:
        sys.stderr.write("Error: interrupted while starting; nothing was done\n")
        raise SystemExit(EXIT_INTERRUPTED) from None
    cli()
