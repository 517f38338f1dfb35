"""The text form of a project secret, and how to recognise one where it does not belong.

Holds no key and loads none: the output checks (:mod:`linkage._files`) and the command line's
message filter use it on names and option values, on either side of the privacy boundary
(the trusted linkage unit may import this module, never :mod:`linkage.secret`). The format
itself is documented in :mod:`linkage.secret`.
"""

from __future__ import annotations

import hashlib
import hmac
import re

KEY_BYTES = 32
MIN_SECRET_BYTES = KEY_BYTES
ENV_VAR = "LINKAGE_SECRET"
TEXT_PREFIX = "linkage-secret-v1:"
_FLAT_PREFIX = TEXT_PREFIX.replace("-", "")  # dashes are ignored everywhere
_CHECK_BYTES = 3
_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base32
_DECODE = {c: i for i, c in enumerate(_ALPHABET)} | {"O": 0, "I": 1, "L": 1}
_SYMBOLS = (KEY_BYTES + _CHECK_BYTES) * 8 // 5  # 56
_INVISIBLE = "\u200b\u200c\u200d\u2060\ufeff\u180e"
_KEYGEN_HINT = "make one with `linkage keygen -o secret.key`"


class SecretTextError(ValueError):
    """A text that is not a secret's text form; :mod:`linkage.secret` raises it as
    :class:`~linkage.errors.SecretError`. (This module imports nothing from linkage, so that
    every :class:`~linkage.errors.LinkageError` can hide secrets with it.)"""


# A secret's text where a name or an option value belongs (`--secret-file "$(cat secret.key)"`,
# `-o "$(cat secret.key)"`): messages replace it with this mark and say what to do instead.
SECRET_MARK = "<the secret>"
# The prefix counts only with key symbols after it: the bare prefix is the tool's own wording
# ("it starts linkage-secret-v1:"), and masking it would hide the advice it is part of.
_PREFIXED_RE = re.compile(
    r"linkage-*secret-*v1\s*:?\s*-*[0-9a-z](?:-*[0-9a-z]){3,}[0-9a-z-]*", re.IGNORECASE
)
_BODY_RE = re.compile(r"[0-9a-z][0-9a-z-]{54,}[0-9a-z]", re.IGNORECASE)


def secret_itself(what: str) -> str:
    """The message for a value that looks like a secret: ``what`` names where it was given."""
    return (
        f"{what}: this looks like the secret itself: put it in a file (--secret-file FILE) or "
        f"in the {ENV_VAR} environment variable, never on the command line"
    )


def _parses(text: str) -> bool:
    try:
        _parse_text(text if _is_prefixed(text) else TEXT_PREFIX + text, "")
    except SecretTextError:
        return False
    return True


def _is_prefixed(text: str) -> bool:
    return _PREFIXED_RE.search(text) is not None


def looks_like_secret(value: object) -> bool:
    """True if ``value`` (a name, an option value) holds a secret's text: the
    ``linkage-secret-v1:`` prefix anywhere (case, dashes and spaces aside), or a run that
    parses as a secret with or without its prefix (56 symbols and a matching checksum)."""
    text = str(value)
    compact = "".join(c for c in text if not (c.isspace() or c in _INVISIBLE))
    if _is_prefixed(compact):
        return True
    return any(_parses(m.group(0)) for m in _BODY_RE.finditer(compact))


def hide_secrets(message: str) -> str:
    """``message`` with every secret-looking run replaced by :data:`SECRET_MARK`, and the
    advice of :func:`secret_itself` appended when one was found. Used on every message the
    command line prints (errors, warnings, usage errors)."""
    out = _PREFIXED_RE.sub(SECRET_MARK, message)
    out = _BODY_RE.sub(lambda m: SECRET_MARK if _parses(m.group(0)) else m.group(0), out)
    if out == message:
        return message
    return f"{out} ({secret_itself(SECRET_MARK)})"


def _checksum(key: bytes) -> bytes:
    return hashlib.sha256(TEXT_PREFIX.encode() + key).digest()[:_CHECK_BYTES]


def secret_text(key: bytes) -> str:
    """The text form of 32 key bytes (see the module docstring). Only keygen calls this."""
    if len(key) != KEY_BYTES:
        raise ValueError(f"a secret key has {KEY_BYTES} bytes")
    n = int.from_bytes(key + _checksum(key), "big")
    chars = "".join(_ALPHABET[(n >> (5 * i)) & 31] for i in reversed(range(_SYMBOLS)))
    return TEXT_PREFIX + "-".join(chars[i : i + 4] for i in range(0, _SYMBOLS, 4))


def _parse_text(text: str, where: str) -> bytes:
    """Key bytes of a secret's text form; :class:`SecretTextError` names ``where`` and never
    echoes a character."""
    compact = "".join(c for c in text if not (c.isspace() or c in _INVISIBLE))
    if not compact:
        raise SecretTextError(f"{where} is empty ({_KEYGEN_HINT})")
    flat = compact.replace("-", "")
    if not flat.lower().startswith(_FLAT_PREFIX):
        raise SecretTextError(
            f"{where} does not hold a linkage secret: give the text that `linkage keygen` "
            f"writes (it starts {TEXT_PREFIX}). Typed passphrases are not accepted: the "
            "key-check value in every encoded file would let the linkage unit test guesses"
        )
    body = flat[len(_FLAT_PREFIX) :].upper()
    if len(body) != _SYMBOLS:
        raise SecretTextError(
            f"{where}: the secret has {len(body)} characters after the prefix, not {_SYMBOLS} "
            "(part of it is missing or mistyped)"
        )
    n = 0
    for i, c in enumerate(body):
        if c not in _DECODE:
            raise SecretTextError(
                f"{where}: character {i + 1} after the prefix is not valid (digits and letters "
                "other than U)"
            )
        n = (n << 5) | _DECODE[c]
    raw = n.to_bytes(KEY_BYTES + _CHECK_BYTES, "big")
    key, check = raw[:KEY_BYTES], raw[KEY_BYTES:]
    if not hmac.compare_digest(check, _checksum(key)):
        raise SecretTextError(
            f"{where}: the secret's checksum does not match (a character is mistyped; compare "
            "it with the partner who made it)"
        )
    return key
