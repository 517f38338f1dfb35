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
import re
import secrets
import stat
from pathlib import Path

import numpy as np
import pyarrow as pa

from linkage._files import Output, atomic_outputs, check_outputs, loose_permissions
from linkage.errors import InputError

KEY_BYTES = 32
_KEY_TEXT = re.compile(r"(?:[0-9a-fA-F]{2}[\s:]?){32}|[A-Za-z0-9+/_-]{43}=?")
"""A 32-byte key written out (hex, or base64) where a file name was expected."""
_LABEL = b"linkage-map-pseudonym/v1\x00"


def write_tlu_key(path: str | Path, *, force: bool = False) -> None:
    """Write 32 random bytes (``secrets``) to a new file of mode 0600, atomically (through
    :mod:`linkage._files`); an existing file is refused unless ``force``."""
    if str(path) == "-":
        raise InputError(
            "the TLU key is written to a file (mode 0600), never to standard output: give a "
            "file name, e.g. -o tlu.key"
        )
    (p,) = check_outputs([Output(Path(path), "TLU key file")], force=force)
    with atomic_outputs(p) as (tmp,):
        tmp.write_bytes(secrets.token_bytes(KEY_BYTES))


def read_tlu_key(path: str | Path) -> bytes:
    """The TLU key from its file: exactly 32 bytes. Refused when its group or other users
    may read or write it (the same permission bits that make :mod:`linkage.secret` warn
    about a partner's secret file: see :func:`linkage._files.loose_permissions`)."""
    p = Path(path)
    if not p.exists() and _KEY_TEXT.fullmatch(str(path).strip()):
        raise InputError(  # never repeat it: the key's own text given as the file name
            "--key-file: this looks like a key itself, not a file name: give the file "
            "`linkage map keygen` wrote (keys never go on the command line)"
        )
    try:
        st = p.stat()
        data = p.read_bytes()
    except FileNotFoundError:
        raise InputError(
            f"{p}: TLU key file not found (make one with `linkage map keygen`)"
        ) from None
    except OSError as exc:
        raise InputError(f"{p}: cannot read the TLU key ({exc.strerror})") from None
    loose = loose_permissions(st.st_mode)
    if loose:
        raise InputError(
            f"{p}: the TLU key is accessible to group or others ({' and '.join(loose)}, mode "
            f"{stat.S_IMODE(st.st_mode):04o}); make it private: chmod 600 {p}"
        )
    if len(data) != KEY_BYTES:
        raise InputError(f"{p}: a TLU key is {KEY_BYTES} bytes, this file has {len(data)}")
    return data


def pseudonyms(entity: np.ndarray, key: bytes, project: str) -> pa.Array:
    """32-hex pseudonym per uint64 entity id for ``project`` (computed once per entity)."""
    if not project.strip():
        raise InputError("--project must not be empty")
    if project != project.strip() or any(not c.isprintable() for c in project):
        raise InputError(
            f"--project {project!r}: starts or ends with a space or holds a control character; "
            "every character changes the pseudonyms, so give the name exactly, e.g. "
            f"{project.strip()!r}"
        )
    kp = hmac.new(key, _LABEL + project.encode("utf-8"), hashlib.sha256).digest()
    uniq, inv = np.unique(np.asarray(entity, np.uint64), return_inverse=True)
    raw = uniq.astype(">u8").tobytes()
    out = [
        hmac.new(kp, raw[i * 8 : i * 8 + 8], hashlib.sha256).hexdigest()[:32]
        for i in range(len(uniq))
    ]
    return pa.array(np.array(out, dtype=object)[inv], pa.string())
