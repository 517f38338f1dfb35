"""User-facing errors.

Every error that a user can cause (bad schema, bad input file, missing secret...) is a
:class:`LinkageError`. The CLI prints its message on one line and exits non-zero; it never
shows a traceback for these. Messages name the file, row, column or JSON path involved and
never contain secret material or record values.
"""

from __future__ import annotations


class LinkageError(Exception):
    """Base class of errors caused by input, configuration or usage (exit code 2)."""

    exit_code = 2


class SchemaError(LinkageError):
    """The linkage schema is invalid; the message names the JSON path."""


class SecretError(LinkageError):
    """The secret is missing, unreadable or too short (never includes secret bytes)."""


class InputError(LinkageError):
    """An input file is unreadable, malformed, or inconsistent with the schema."""


class CompatibilityError(LinkageError):
    """Encoded files cannot be linked together (different schema, secret, length...)."""
