"""The project secret: text form, random keys only, never shown, derivation, key-check, keygen."""

from __future__ import annotations

import errno
import hashlib
import os
import pickle
import stat
import warnings
from pathlib import Path

import pytest
from click.testing import CliRunner

from linkage.cli import main
from linkage.errors import LinkageError, SecretError
from linkage.schema import Schema
from linkage.schema_template import uk_person_unhardened
from linkage.secret import (
    ENV_VAR,
    TEXT_PREFIX,
    Secret,
    SecretFileWarning,
    hkdf_sha256,
    secret_text,
    write_new_secret,
)

KEY = hashlib.sha256(b"test_secret key").digest()
TEXT = secret_text(KEY)
BODY = TEXT[len(TEXT_PREFIX) :]
FP = Schema.from_dict(uk_person_unhardened()).fingerprint
KC = Secret(KEY).key_check(FP)


def _leaks(text: str, key: bytes = KEY) -> bool:
    body = secret_text(key)[len(TEXT_PREFIX) :]
    return any(
        s in text
        for s in (key.decode("latin-1"), key.hex(), repr(key), body, body.replace("-", ""))
    )


def _swap_char(body: str, i: int) -> str:
    """``body`` with its i-th non-dash character replaced by another valid one."""
    pos = [j for j, c in enumerate(body) if c != "-"][i]
    new = "7" if body[pos] != "7" else "8"
    return body[:pos] + new + body[pos + 1 :]


# -- raw keys (library constructor) ---------------------------------------------------------------
@pytest.mark.parametrize("n", [0, 1, 16, 31])
def test_short_key_refused(n: int) -> None:
    with pytest.raises(SecretError, match="too short"):
        Secret(KEY[:n])


@pytest.mark.parametrize(
    "weak",
    [
        b"CouncilLinkage2024CouncilLinkage",  # typed text, 32 bytes
        b"a" * 32,
        b"QQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQ",
        bytes(32),
        bytes([1, 2, 3, 4]) * 8,  # few distinct byte values
        b"test-secret-0123456789abcdef-XYZ",
        bytes(range(32)),  # arithmetic progression: 32 distinct values, one step
        bytes(range(3, 256, 7))[:32],
        bytes((200 - 5 * i) % 256 for i in range(32)),
    ],
)
def test_weak_key_refused(weak: bytes) -> None:
    with pytest.raises(SecretError, match="not random"):
        Secret(weak)


def test_random_keys_accepted() -> None:
    for i in range(200):
        Secret(hashlib.sha256(bytes([i])).digest())
    Secret(os.urandom(64))


def test_secret_must_be_bytes() -> None:
    with pytest.raises(SecretError):
        Secret(TEXT)  # type: ignore[arg-type]


# -- text form ------------------------------------------------------------------------------------
def test_text_form_shape_and_round_trip() -> None:
    assert TEXT.startswith(TEXT_PREFIX)
    groups = BODY.split("-")
    assert len(groups) == 14 and all(len(g) == 4 for g in groups)
    assert set(BODY) <= set("0123456789ABCDEFGHJKMNPQRSTVWXYZ-")
    assert Secret.from_text(TEXT).key_check(FP) == KC
    for _ in range(50):
        k = os.urandom(32)
        assert Secret.from_text(secret_text(k)).key_check(FP) == Secret(k).key_check(FP)


@pytest.mark.parametrize(
    "variant",
    [
        TEXT + "\n",
        TEXT + "\r\n",
        TEXT + "\n\n\n",
        "  " + TEXT + "\t\r\n",
        TEXT.lower(),
        TEXT.replace("-", ""),
        TEXT_PREFIX + BODY.replace("-", " "),
        TEXT_PREFIX + "\n" + "\n".join(BODY.split("-")),  # typed back on several lines
        TEXT_PREFIX + BODY.replace("-", "\u00a0"),  # no-break spaces
        "\ufeff" + TEXT + "\u200b",  # BOM and zero-width space
        TEXT_PREFIX + BODY.replace("0", "O").replace("1", "I"),  # misread digits
        TEXT_PREFIX + BODY.replace("1", "l"),
    ],
)
def test_text_form_tolerates_layout(variant: str) -> None:
    assert Secret.from_text(variant).key_check(FP) == KC


@pytest.mark.parametrize("i", [0, 13, 27, 55])
def test_mistyped_character_is_caught_by_the_checksum(i: int) -> None:
    with pytest.raises(SecretError, match="checksum") as exc:
        Secret.from_text(TEXT_PREFIX + _swap_char(BODY, i))
    assert not _leaks(str(exc.value))


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        (TEXT[:-1], "55 characters"),
        (TEXT + "A", "57 characters"),
        (TEXT_PREFIX + "U" + BODY[1:], "character 1"),
        (TEXT_PREFIX + BODY[:-1] + "!", "character 56"),
        ("CouncilLinkage2024", "linkage keygen"),
        ("aaaaaaaaaaaaaaaa", "linkage keygen"),
        (KEY.hex(), "linkage keygen"),
        (BODY, "linkage keygen"),  # prefix missing
        ("   \n", "empty"),
    ],
)
def test_text_form_errors(text: str, needle: str) -> None:
    with pytest.raises(SecretError, match=needle) as exc:
        Secret.from_text(text)
    assert not _leaks(str(exc.value))


# -- never shown ----------------------------------------------------------------------------------
def test_secret_not_in_repr_or_str() -> None:
    s = Secret(KEY)
    for text in (repr(s), str(s), f"{s}", f"{s!r}", repr([s]), repr({"k": s})):
        assert not _leaks(text)
        assert "hidden" in text


def test_secret_cannot_be_pickled() -> None:
    with pytest.raises(TypeError):
        pickle.dumps(Secret(KEY))


# -- file and environment -------------------------------------------------------------------------
def _private(p: Path, data: bytes) -> Path:
    p.write_bytes(data)
    p.chmod(0o600)
    return p


def test_file_and_environment_give_the_same_key_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`LINKAGE_SECRET="$(cat secret.key)"` and `--secret-file secret.key` are one secret."""
    p = tmp_path / "secret.key"
    write_new_secret(p)
    from_file = Secret.from_file(p).key_check(FP)
    monkeypatch.setenv(ENV_VAR, p.read_text().rstrip("\n"))  # what $(cat ...) gives
    assert Secret.from_env().key_check(FP) == from_file
    assert Secret.resolve(None).key_check(FP) == from_file
    monkeypatch.setenv(ENV_VAR, p.read_text())  # or pasted with its newline
    assert Secret.from_env().key_check(FP) == from_file


@pytest.mark.parametrize("ending", [b"", b"\n", b"\r\n", b"\n\n", b"\r\n\r\n", b" \n"])
def test_file_line_endings_do_not_change_the_secret(tmp_path: Path, ending: bytes) -> None:
    p = _private(tmp_path / "s.key", TEXT.encode() + ending)
    assert Secret.from_file(p).key_check(FP) == KC


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"CouncilLinkage2024", "linkage keygen"),
        (b"CouncilLinkage2024\n", "linkage keygen"),
        (b"a" * 16, "linkage keygen"),
        (KEY, "binary"),  # an old raw-bytes secret file
        (b"", "empty"),
        (b"\n", "empty"),
        (b"\r\n", "empty"),
    ],
)
def test_file_content_errors(tmp_path: Path, content: bytes, message: str) -> None:
    p = _private(tmp_path / "secret.key", content)
    with pytest.raises(SecretError, match=message) as exc:
        Secret.from_file(p)
    assert "secret.key" in str(exc.value)
    assert isinstance(exc.value, LinkageError)


@pytest.mark.parametrize(("setup", "message"), [("missing", "not found"), ("dir", "directory")])
def test_file_errors(tmp_path: Path, setup: str, message: str) -> None:
    p = tmp_path / "secret.key"
    if setup == "dir":
        p.mkdir()
    with pytest.raises(SecretError, match=message):
        Secret.from_file(p)


def test_environment_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_VAR, raising=False)
    with pytest.raises(SecretError, match="--secret-file"):
        Secret.from_env()
    with pytest.raises(SecretError, match=ENV_VAR):
        Secret.resolve(None)
    for value in ("", "CouncilLinkage2024", "QQQQQQQQQQQQQQQQ", KEY.hex()):
        monkeypatch.setenv(ENV_VAR, value)
        with pytest.raises(SecretError, match=ENV_VAR) as exc:
            Secret.from_env()
        assert "CouncilLinkage" not in str(exc.value) and KEY.hex() not in str(exc.value)


def test_a_file_and_the_environment_together_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two secrets given: neither wins silently (the file used to)."""
    monkeypatch.setenv(ENV_VAR, TEXT)
    other = os.urandom(32)
    p = _private(tmp_path / "other.key", secret_text(other).encode())
    with pytest.raises(SecretError, match="two secrets given") as exc:
        Secret.resolve(p)
    assert not _leaks(str(exc.value)) and not _leaks(str(exc.value), other)
    monkeypatch.setenv(ENV_VAR, "")  # an empty variable is no secret
    assert Secret.resolve(p).key_check(FP) == Secret(other).key_check(FP)


@pytest.mark.parametrize(
    ("mode", "needle"),
    [(0o644, "readable by every user"), (0o604, "readable"), (0o622, "writable"),
     (0o620, "writable"), (0o666, "readable by every user and writable"),
     (0o640, "readable by its group"), (0o660, "readable by its group and writable by its"),
     (0o440, "readable by its group")],
)  # fmt: skip
def test_loose_file_mode_warns(tmp_path: Path, mode: int, needle: str) -> None:
    p = tmp_path / "secret.key"
    p.write_text(TEXT)
    p.chmod(mode)
    seen: list[str] = []
    assert Secret.from_file(p, warn=seen.append).key_check(FP) == KC
    assert len(seen) == 1 and needle in seen[0] and "chmod 600" in seen[0]
    assert str(p) in seen[0] and not _leaks(seen[0])
    with pytest.warns(SecretFileWarning, match="chmod 600"):
        Secret.from_file(p)


@pytest.mark.parametrize("mode", [0o600, 0o400, 0o700, 0o500])
def test_private_file_mode_does_not_warn(tmp_path: Path, mode: int) -> None:
    p = tmp_path / "secret.key"
    p.write_text(TEXT)
    p.chmod(mode)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Secret.from_file(p)


# -- derivation -----------------------------------------------------------------------------------
def test_hkdf_rfc5869_case_1() -> None:
    okm = hkdf_sha256(bytes([0x0B]) * 22, bytes(range(0xF0, 0xFA)), 42, bytes(range(13)))
    assert okm.hex() == (
        "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"
    )


def test_derived_keys_are_distinct_and_deterministic() -> None:
    s = Secret(KEY)
    keys = [
        s.field_key(FP, "surname"),
        s.field_key(FP, "given_name"),
        s.block_key(FP, "surname"),
        s.field_key("0" * 64, "surname"),
        Secret(hashlib.sha256(b"y").digest()).field_key(FP, "surname"),
    ]
    assert len(set(keys)) == len(keys)
    assert all(len(k) == 32 for k in keys)
    assert s.field_key(FP, "surname") == Secret(KEY).field_key(FP, "surname")
    assert KEY not in b"".join(keys)


def test_key_check() -> None:
    a = Secret(KEY).key_check(FP)
    assert a == Secret(KEY).key_check(FP)
    assert len(a) == 32 and int(a, 16) >= 0
    assert a != Secret(KEY[:-1] + bytes([KEY[-1] ^ 1])).key_check(FP)  # different secret
    doc = uk_person_unhardened()
    doc["filter"]["length"] = 2048
    assert a != Secret(KEY).key_check(Schema.from_dict(doc).fingerprint)  # different schema
    assert not _leaks(a)
    assert a not in (Secret(KEY).field_key(FP, "key-check").hex(), FP)


# -- keygen ---------------------------------------------------------------------------------------
def test_write_new_secret_mode_format_and_refusal(tmp_path: Path) -> None:
    p = tmp_path / "secret.key"
    write_new_secret(p)
    assert stat.S_IMODE(p.stat().st_mode) == 0o600
    first = p.read_text()
    assert first.startswith(TEXT_PREFIX) and first.endswith("\n") and first.count("\n") == 1
    Secret.from_file(p)
    with pytest.raises(LinkageError, match="already exists"):
        write_new_secret(p)
    assert p.read_text() == first
    write_new_secret(p, force=True)
    assert p.read_text() != first
    assert stat.S_IMODE(p.stat().st_mode) == 0o600
    assert sorted(os.listdir(tmp_path)) == ["secret.key"]
    with pytest.raises(LinkageError, match="does not exist"):
        write_new_secret(tmp_path / "nodir" / "s.key")


def test_write_new_secret_mode_ignores_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        write_new_secret(tmp_path / "s.key")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "s.key").stat().st_mode) == 0o600


def test_cli_keygen(tmp_path: Path) -> None:
    runner = CliRunner()
    p = tmp_path / "k.key"
    r = runner.invoke(main, ["keygen", "-o", str(p)])
    assert r.exit_code == 0, r.output
    assert stat.S_IMODE(p.stat().st_mode) == 0o600
    text = p.read_text()
    assert not _leaks(r.output, Secret.from_file(p)._key)
    r2 = runner.invoke(main, ["keygen", "-o", str(p)])
    assert r2.exit_code == 2
    assert r2.output.startswith("Error:") and "already exists" in r2.output
    assert "--force" in r2.output and "force=True" not in r2.output
    assert "Traceback" not in r2.output
    assert p.read_text() == text
    r3 = runner.invoke(main, ["keygen", "-o", str(p), "--force"])
    assert r3.exit_code == 0 and p.read_text() != text
    assert sorted(os.listdir(tmp_path)) == ["k.key"]


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EACCES, errno.EROFS, errno.EDQUOT])
def test_cli_keygen_os_error_is_one_line_and_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int
) -> None:
    def fail(self: Path, *a: object, **k: object) -> None:
        raise OSError(code, os.strerror(code), str(self))

    monkeypatch.setattr(Path, "write_text", fail)
    p = tmp_path / "k.key"
    r = CliRunner().invoke(main, ["keygen", "-o", str(p)])
    assert r.exit_code == 2, r.output
    lines = r.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error:"), r.output
    assert str(p) in lines[0] and os.strerror(code) in lines[0]
    assert ".partial" not in lines[0] and "None" not in lines[0]
    assert os.listdir(tmp_path) == []


def test_cli_encode_warns_about_a_world_readable_secret_file(tmp_path: Path) -> None:
    import json

    (tmp_path / "in.csv").write_text("record_id,surname\nr1,Smith\nr2,Jones\n")
    (tmp_path / "schema.json").write_text(json.dumps(uk_person_unhardened()))
    key = tmp_path / "secret.key"
    key.write_text(TEXT + "\n")
    key.chmod(0o644)
    absent = ["given_name", "date_of_birth", "sex", "postcode", "address", "nhs_number"]
    args = ["encode", str(tmp_path / "in.csv"), "-s", str(tmp_path / "schema.json"),
            "--secret-file", str(key), "--party", "a",
            "-o", str(tmp_path / "a.parquet")]  # fmt: skip
    for f in absent:
        args += ["--absent", f]
    r = CliRunner().invoke(main, args, env={ENV_VAR: None})
    assert "Traceback" not in r.output  # (part B's minimum evidence may refuse this tiny file)
    assert "Warning: secret file" in r.output and "chmod 600" in r.output
    assert not _leaks(r.output)


@pytest.mark.parametrize("mode", [0o600, 0o400, 0o700, 0o640, 0o620, 0o604, 0o602, 0o660, 0o644])
def test_secret_file_warning_and_tlu_key_refusal_agree(tmp_path: Path, mode: int) -> None:
    """The same permission bits (group or other, read or write) make a partner's secret file
    warn and the TLU's key file refused (documented in docs/linkage-map.md)."""
    from linkage.tlu.linkage_map.pseudonyms import read_tlu_key

    p = tmp_path / "secret.key"
    p.write_text(TEXT)
    p.chmod(mode)
    seen: list[str] = []
    Secret.from_file(p, warn=seen.append)
    k = tmp_path / "tlu.key"
    k.write_bytes(os.urandom(32))
    k.chmod(mode)
    try:
        read_tlu_key(k)
        refused = False
    except LinkageError:
        refused = True
    assert bool(seen) == refused == bool(mode & 0o066)


def test_crafted_progression_key_with_valid_checksum_refused_from_text() -> None:
    with pytest.raises(SecretError, match="not random"):
        Secret.from_text(secret_text(bytes(range(32))))


def test_random_keys_pass_the_pattern_checks() -> None:
    for i in range(2000):
        Secret(hashlib.sha256(i.to_bytes(4, "big")).digest())
