"""Per-project pseudonyms of entity ids under the TLU's own key, and that key's file.

A project gets ``pseudonym = HMAC-SHA256(k_project, entity id as 8 big-endian bytes)``
truncated to 128 bits (32 hex digits), with ``k_project = HMAC-SHA256(tlu_key,
"linkage-map-pseudonym/v1\\0" + project name)`` (RFC 2104 HMAC used as a keyed PRF, as in
HKDF-Expand, RFC 5869). Two projects' outputs share no value, so they cannot be joined
without the TLU key; the TLU can re-derive both. The TLU key is the TLU's own 32 random
bytes, unrelated to (and never derived from) the partners' encoding secret.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import stat
from pathlib import Path

import numpy as np
import pyarrow as pa

from linkage.errors import InputError

KEY_BYTES = 32
_LABEL = b"linkage-map-pseudonym/v1\x00"


def write_tlu_key(path: str | Path, *, force: bool = False) -> None:
    """Write 32 random bytes (``secrets``) to a new file of mode 0600."""
    p = Path(path)
    if p.exists() and not force:
        raise InputError(f"{p} already exists (use --force to overwrite)")
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        raise InputError(f"{parent}: output directory does not exist")
    tmp = p.with_name(f".{p.name}.{os.getpid()}.partial")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(secrets.token_bytes(KEY_BYTES))
        os.replace(tmp, p)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def read_tlu_key(path: str | Path) -> bytes:
    """The TLU key from its file: exactly 32 bytes, not readable by group or others."""
    p = Path(path)
    try:
        st = p.stat()
        data = p.read_bytes()
    except FileNotFoundError:
        raise InputError(
            f"{p}: TLU key file not found (make one with `linkage map keygen`)"
        ) from None
    except OSError as exc:
        raise InputError(f"{p}: cannot read the TLU key ({exc.strerror})") from None
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise InputError(f"{p}: the TLU key is accessible to group or others; chmod 600 it")
    if len(data) != KEY_BYTES:
        raise InputError(f"{p}: a TLU key is {KEY_BYTES} bytes, this file has {len(data)}")
    return data


def pseudonyms(entity: np.ndarray, key: bytes, project: str) -> pa.Array:
    """32-hex pseudonym per uint64 entity id for ``project`` (computed once per entity)."""
    if not project.strip():
        raise InputError("--project must not be empty")
    kp = hmac.new(key, _LABEL + project.encode("utf-8"), hashlib.sha256).digest()
    uniq, inv = np.unique(np.asarray(entity, np.uint64), return_inverse=True)
    raw = uniq.astype(">u8").tobytes()
    out = [
        hmac.new(kp, raw[i * 8 : i * 8 + 8], hashlib.sha256).hexdigest()[:32]
        for i in range(len(uniq))
    ]
    return pa.array(np.array(out, dtype=object)[inv], pa.string())
