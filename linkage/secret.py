"""The project secret and the keys derived from it.

The secret is shared by the partners of a project and never reaches the trusted linkage unit.
It is read from a file (``--secret-file``) or the ``LINKAGE_SECRET`` environment variable,
never from a command-line value, and it never appears in ``repr``, logs, outputs or errors.

Text form (what ``linkage keygen`` writes; the file and the variable take the same text)::

    linkage-secret-v1:1A2B-3C4D-...-WXYZ     (14 groups of 4 characters)

The 56 characters after the prefix are the Crockford base32 (https://www.crockford.com/
base32.html: digits and letters without I, L, O, U; read case-insensitively, O as 0, I and L as
1) of 32 random key bytes followed by a 3-byte checksum (SHA-256 of the prefix and the key).
It can be pasted, read over the phone, printed and typed back, or put in an environment
variable unchanged; whitespace and dashes anywhere (line breaks, CRLF, no-break spaces) are
ignored, and a mistyped character is caught by the checksum at the partner, not at the TLU.

Only such secrets are accepted: 256 random bits. A typed passphrase is refused, because the
key-check value in every encoded file would let the linkage unit test guesses offline.
``Secret(raw_bytes)`` (library) takes 32 or more random bytes and refuses bytes that look
typed (all printable ASCII) or repetitive.

Keys are derived with HKDF-SHA256 (RFC 5869): one per field and one per block key, each bound
to the schema fingerprint, so two projects that reuse a secret still get unrelated encodings.
A *key-check value* (a keyed digest of a fixed label, not the key) goes into every encoded
file so the linkage unit can confirm that all partners used the same secret and schema.
"""

from __future__ import annotations

import hmac
import os
import secrets as _secrets
import stat
import warnings
from collections.abc import Callable
from itertools import pairwise
from pathlib import Path

from linkage._files import loose_permissions
from linkage.errors import SecretError
from linkage.secret_text import (
    _KEYGEN_HINT,
    ENV_VAR,
    KEY_BYTES,
    MIN_SECRET_BYTES,
    SecretTextError,
    _parse_text,
    looks_like_secret,
    secret_itself,
    secret_text,
)
from linkage.secret_text import SECRET_MARK as SECRET_MARK  # the text API, re-exported
from linkage.secret_text import TEXT_PREFIX as TEXT_PREFIX
from linkage.secret_text import hide_secrets as hide_secrets

_HKDF_SALT = b"linkage/v1 hkdf salt"

Warn = Callable[[str], None]


class SecretFileWarning(UserWarning):
    """A secret file that other users can read or change."""


def hkdf_sha256(ikm: bytes, info: bytes, length: int = 32, salt: bytes = _HKDF_SALT) -> bytes:
    """HKDF-SHA256 extract-and-expand (RFC 5869)."""
    if length > 255 * 32:
        raise ValueError("HKDF output too long")
    prk = hmac.digest(salt, ikm, "sha256")
    out, block, counter = b"", b"", 1
    while len(out) < length:
        block = hmac.digest(prk, block + info + bytes([counter]), "sha256")
        out += block
        counter += 1
    return out[:length]


def _looks_weak(key: bytes) -> str | None:
    """Why ``key`` is not a random key, or None. 32 random bytes are all printable ASCII with
    probability (95/256)^32 < 1e-13, and have fewer than 16 distinct values far less often.
    Their 31 successive differences (mod 256) are as random: fewer than 16 distinct ones happen
    with probability below C(256, 15) * (15/256)^31 < 1e-13, so a key built by a rule (an
    arithmetic progression such as ``bytes(range(32))``, a short pattern repeated) is refused."""
    if all(0x20 <= b < 0x7F for b in key):
        return "it is printable text (typed, not random bytes)"
    if len(set(key)) < min(16, len(key) // 2):
        return "it repeats too few byte values to be random"
    steps = {(b - a) % 256 for a, b in pairwise(key)}
    if len(steps) < min(16, (len(key) - 1) // 2):
        return "its bytes follow a simple pattern (too few distinct steps between them)"
    return None


class Secret:
    """A project secret: 32 or more random bytes. Its bytes are never shown.

    ``Secret(raw_key_bytes)`` is the library constructor for raw key bytes; partners' files
    and ``LINKAGE_SECRET`` hold the text form (:meth:`from_file`, :meth:`from_env`,
    :meth:`from_text`). Raises :class:`SecretError` for short or typed-looking keys."""

    __slots__ = ("_key",)

    def __init__(self, key: bytes) -> None:
        if not isinstance(key, bytes | bytearray):
            raise SecretError("the secret must be bytes")
        if len(key) < MIN_SECRET_BYTES:
            raise SecretError(
                f"the secret is too short ({len(key)} bytes; at least {MIN_SECRET_BYTES} "
                f"random bytes are needed — {_KEYGEN_HINT})"
            )
        weak = _looks_weak(bytes(key))
        if weak is not None:
            raise SecretError(f"the secret is not random: {weak} — {_KEYGEN_HINT}")
        self._key = bytes(key)

    def __repr__(self) -> str:
        return "Secret(<hidden>)"

    __str__ = __repr__

    def __reduce__(self) -> str:  # refuse pickling: secrets do not travel
        raise TypeError("a Secret cannot be pickled")

    @classmethod
    def generate(cls) -> Secret:
        return cls(_secrets.token_bytes(KEY_BYTES))

    @classmethod
    def from_text(cls, text: str, where: str = "the given text") -> Secret:
        """The secret of a text form written by ``linkage keygen`` (whitespace ignored)."""
        try:
            key = _parse_text(text, where)
        except SecretTextError as exc:
            raise SecretError(str(exc)) from None
        return cls(key)

    @classmethod
    def from_file(cls, path: str | Path, *, warn: Warn | None = None) -> Secret:
        """Read a secret file (the text ``linkage keygen`` writes; line endings, trailing
        newlines and spaces do not matter). ``warn(message)`` is told when other users can
        read the file or change it (default: a :class:`SecretFileWarning`)."""
        if looks_like_secret(path):
            raise SecretError(secret_itself("the secret file name"))
        p = Path(path)
        try:
            data = p.read_bytes()
            mode = p.stat().st_mode
        except FileNotFoundError:
            raise SecretError(f"secret file {p} not found") from None
        except IsADirectoryError:
            raise SecretError(f"secret file {p} is a directory") from None
        except OSError as exc:
            raise SecretError(f"cannot read secret file {p} ({exc.strerror})") from None
        _check_mode(p, mode, warn)
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise SecretError(
                f"secret file {p} does not hold a linkage secret (binary data, perhaps from an "
                f"older linkage; {_KEYGEN_HINT} and re-encode)"
            ) from None
        return cls.from_text(text, f"secret file {p}")

    @classmethod
    def from_env(cls, var: str = ENV_VAR) -> Secret:
        """The secret in environment variable ``var`` (the same text as the file)."""
        value = os.environ.get(var)
        if value is None or value == "":
            raise SecretError(
                f"no secret: give --secret-file FILE or set the {var} environment variable"
            )
        return cls.from_text(value, f"environment variable {var}")

    @classmethod
    def resolve(cls, secret_file: str | Path | None, *, warn: Warn | None = None) -> Secret:
        """The secret from ``secret_file`` if given, else from ``LINKAGE_SECRET``. Raises
        :class:`SecretError` when both are given (two secrets: which one is meant is not
        guessed)."""
        if secret_file is not None and os.environ.get(ENV_VAR):
            raise SecretError(
                f"two secrets given: --secret-file and the {ENV_VAR} environment variable; "
                f"give one (unset {ENV_VAR}, or leave out --secret-file)"
            )
        if secret_file is not None:
            return cls.from_file(secret_file, warn=warn)
        return cls.from_env()

    # -- derived keys -----------------------------------------------------------------
    def derive(self, purpose: str, fingerprint: str, name: str) -> bytes:
        """A 32-byte key for one purpose ("field", "block", "check") of one schema."""
        info = b"linkage/v1\x00" + purpose.encode() + b"\x00" + fingerprint.encode()
        info += b"\x00" + name.encode("utf-8")
        return hkdf_sha256(self._key, info)

    def field_key(self, fingerprint: str, field: str) -> bytes:
        return self.derive("field", fingerprint, field)

    def block_key(self, fingerprint: str, name: str) -> bytes:
        return self.derive("block", fingerprint, name)

    def key_check(self, fingerprint: str) -> str:
        """A keyed digest of a fixed label: equal for equal (secret, schema), reveals neither."""
        k = self.derive("check", fingerprint, "key-check")
        return hmac.digest(k, b"linkage key-check value v1", "sha256")[:16].hex()


def _check_mode(p: Path, mode: int, warn: Warn | None) -> None:
    loose = loose_permissions(mode)
    if not loose:
        return
    msg = (
        f"secret file {p} is {' and '.join(loose)} (mode {stat.S_IMODE(mode):04o}); "
        f"make it private: chmod 600 {p}"
    )
    if warn is not None:
        warn(msg)
    else:
        warnings.warn(msg, SecretFileWarning, stacklevel=3)


def write_new_secret(path: str | Path, *, force: bool = False) -> None:
    """Write a new secret (32 random bytes, in text form) to ``path`` with mode 0600,
    atomically. Raises :class:`~linkage._files.OutputError` if ``path`` exists and not
    ``force``, or if it cannot be written."""
    from linkage._files import Output, atomic_outputs, check_outputs

    (p,) = check_outputs([Output(Path(path), "secret file")], force=force)
    text = secret_text(_secrets.token_bytes(KEY_BYTES)) + "\n"
    with atomic_outputs(p) as (tmp,):
        tmp.write_text(text, encoding="ascii")
