"""User-facing errors.

Every error that a user can cause (bad schema, bad input file, missing secret...) is a
:class:`LinkageError`. The CLI prints its message on one line and exits non-zero; it never
shows a traceback for these. Messages name the file, row, column or JSON path involved and
never contain secret material or record values.
"""

from __future__ import annotations


class LinkageError(Exception):
    """Base class of errors caused by input, configuration or usage (exit code 2).

    A message that holds something looking like the project secret (a file name or option
    value the user gave: ``InputFile("linkage-secret-v1:...")``) has it replaced, with advice,
    by :func:`linkage.secret_text.hide_secrets`, so no library or CLI message repeats it."""

    exit_code = 2

    def __init__(self, *args: object) -> None:
        if args and isinstance(args[0], str):
            from linkage.secret_text import hide_secrets  # (it imports nothing from linkage)

            args = (hide_secrets(args[0]), *args[1:])
        super().__init__(*args)


class SchemaError(LinkageError):
    """The linkage schema is invalid; the message names the JSON path."""


class SecretError(LinkageError):
    """The secret is missing, unreadable or too short (never includes secret bytes)."""


class InputError(LinkageError):
    """An input file is unreadable, malformed, or inconsistent with the schema."""


class CompatibilityError(LinkageError):
    """Encoded files cannot be linked together (different schema, secret, length...)."""
