"""The ``linkage`` command line. Every command calls the library function of the same name.

Errors caused by input or usage print one line (``Error: ...``) and exit with status 2;
nothing is left half-written. Other statuses: 1 a requested check failed (``audit
--fail-above``, outputs written), 3 out of memory, 70 an internal error (a bug), 130
interrupted, 141 the output's reader went away (no message). Secrets are read from a file
or the LINKAGE_SECRET environment variable, never from an option value.

One module per side of the pipeline: :mod:`.project` (keygen, schema), :mod:`.partner`
(encode), :mod:`.tlu` (match, map), :mod:`.lab` (synth, evaluate, audit); :mod:`.common`
holds the ``main`` group and shared helpers.
"""

from linkage.cli import lab, partner, project, tlu  # noqa: F401  (register the commands)
from linkage.cli.common import (
    _Bar,
    _kernels_uncached,
    _say_if_compiling,
    handle_errors,
    main,
)

__all__ = ["_Bar", "_kernels_uncached", "_say_if_compiling", "handle_errors", "main"]

if __name__ == "__main__":  # pragma: no cover
    main()
