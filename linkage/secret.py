"""The project secret and the keys derived from it.

The secret is shared by the partners of a project and never reaches the trusted linkage unit.
It is read from a file (``--secret-file``) or the ``LINKAGE_SECRET`` environment variable,
never from a command-line value, and it never appears in ``repr``, logs, outputs or errors.

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
from pathlib import Path

from linkage.errors import SecretError

MIN_SECRET_BYTES = 16
ENV_VAR = "LINKAGE_SECRET"
_HKDF_SALT = b"linkage/v1 hkdf salt"


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


class Secret:
    """A project secret (at least 16 bytes). Its bytes are never shown."""

    __slots__ = ("_key",)

    def __init__(self, key: bytes) -> None:
        if not isinstance(key, bytes | bytearray):
            raise SecretError("the secret must be bytes")
        if len(key) < MIN_SECRET_BYTES:
            raise SecretError(
                f"the secret is too short ({len(key)} bytes; at least {MIN_SECRET_BYTES} are "
                "needed — make one with `linkage keygen -o secret.key`)"
            )
        self._key = bytes(key)

    def __repr__(self) -> str:
        return "Secret(<hidden>)"

    __str__ = __repr__

    def __reduce__(self) -> str:  # refuse pickling: secrets do not travel
        raise TypeError("a Secret cannot be pickled")

    @classmethod
    def generate(cls) -> Secret:
        return cls(_secrets.token_bytes(32))

    @classmethod
    def from_file(cls, path: str | Path) -> Secret:
        """Read a secret file. Raw bytes are used as they are, except that a file holding
        only hex digits (as written by ``linkage keygen --hex``) or ending in one newline is
        taken as text without the newline."""
        p = Path(path)
        try:
            data = p.read_bytes()
        except FileNotFoundError:
            raise SecretError(f"secret file {p} not found") from None
        except IsADirectoryError:
            raise SecretError(f"secret file {p} is a directory") from None
        except OSError as exc:
            raise SecretError(f"cannot read secret file {p} ({exc.strerror})") from None
        if data.endswith(b"\n") and data.count(b"\n") == 1:
            data = data[:-1]
        if not data:
            raise SecretError(f"secret file {p} is empty")
        try:
            return cls(data)
        except SecretError as exc:
            raise SecretError(f"secret file {p}: {exc}") from None

    @classmethod
    def from_env(cls, var: str = ENV_VAR) -> Secret:
        value = os.environ.get(var)
        if value is None or value == "":
            raise SecretError(
                f"no secret: give --secret-file FILE or set the {var} environment variable"
            )
        try:
            return cls(value.encode("utf-8"))
        except SecretError as exc:
            raise SecretError(f"environment variable {var}: {exc}") from None

    @classmethod
    def resolve(cls, secret_file: str | Path | None) -> Secret:
        """The secret from ``secret_file`` if given, else from ``LINKAGE_SECRET``."""
        if secret_file is not None:
            return cls.from_file(secret_file)
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


def write_new_secret(path: str | Path, *, force: bool = False) -> None:
    """Write 32 random bytes to ``path`` with mode 0600, atomically; refuse to overwrite."""
    p = Path(path)
    if p.exists() and not force:
        raise SecretError(f"{p} already exists; refusing to overwrite a secret (use --force)")
    if p.parent and not p.parent.exists():
        raise SecretError(f"directory {p.parent} does not exist")
    tmp = p.with_name(f".{p.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, stat.S_IRUSR | stat.S_IWUSR)
    try:
        os.write(fd, _secrets.token_bytes(32))
        os.fsync(fd)
    finally:
        os.close(fd)
    os.chmod(tmp, 0o600)
    os.replace(tmp, p)
