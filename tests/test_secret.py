"""The project secret: length, never shown, key derivation, key-check, keygen."""

from __future__ import annotations

import os
import pickle
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

from linkage.cli import main
from linkage.errors import LinkageError, SecretError
from linkage.schema import Schema, uk_person_template
from linkage.secret import ENV_VAR, Secret, hkdf_sha256, write_new_secret

KEY = b"S3CRET-abcdefghijklmnopqrstuvwxyz"
FP = Schema.from_dict(uk_person_template()).fingerprint


def _leaks(text: str, key: bytes = KEY) -> bool:
    return key.decode("latin-1") in text or key.hex() in text or repr(key) in text


# -- length -------------------------------------------------------------------------------------
@pytest.mark.parametrize("n", [0, 1, 15])
def test_short_secret_refused(n: int) -> None:
    with pytest.raises(SecretError, match="too short"):
        Secret(KEY[:n])


def test_sixteen_bytes_is_enough() -> None:
    Secret(KEY[:16])


def test_secret_must_be_bytes() -> None:
    with pytest.raises(SecretError):
        Secret(KEY.decode())  # type: ignore[arg-type]


# -- never shown ----------------------------------------------------------------------------------
def test_secret_not_in_repr_or_str() -> None:
    s = Secret(KEY)
    for text in (repr(s), str(s), f"{s}", f"{s!r}", repr([s]), repr({"k": s})):
        assert not _leaks(text)
        assert "hidden" in text


def test_secret_cannot_be_pickled() -> None:
    with pytest.raises(TypeError):
        pickle.dumps(Secret(KEY))


def test_secret_not_in_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    short = b"tooShortSecret!"  # 15 bytes
    p = tmp_path / "short.key"
    p.write_bytes(short)
    msgs = []
    for make in (
        lambda: Secret(short),
        lambda: Secret.from_file(p),
    ):
        with pytest.raises(SecretError) as exc:
            make()
        msgs.append(str(exc.value))
    monkeypatch.setenv(ENV_VAR, short.decode())
    with pytest.raises(SecretError) as exc:
        Secret.from_env()
    msgs.append(str(exc.value))
    for m in msgs:
        assert not _leaks(m, short), m
        assert "15 bytes" in m
    assert ENV_VAR in msgs[-1]
    assert "short.key" in msgs[1]


# -- reading --------------------------------------------------------------------------------------
def test_from_file_reads_raw_bytes_and_strips_one_newline(tmp_path: Path) -> None:
    raw = tmp_path / "raw.key"
    raw.write_bytes(KEY)
    nl = tmp_path / "nl.key"
    nl.write_bytes(KEY + b"\n")
    a, b = Secret.from_file(raw), Secret.from_file(nl)
    assert a.key_check(FP) == b.key_check(FP) == Secret(KEY).key_check(FP)
    binary = tmp_path / "bin.key"
    binary.write_bytes(bytes(range(256))[:32])
    Secret.from_file(binary)


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ("missing", "not found"),
        ("directory", "is a directory"),
        ("empty", "is empty"),
        ("newline_only", "is empty"),
    ],
)
def test_from_file_errors(tmp_path: Path, setup: str, message: str) -> None:
    p = tmp_path / "secret.key"
    if setup == "directory":
        p.mkdir()
    elif setup == "empty":
        p.write_bytes(b"")
    elif setup == "newline_only":
        p.write_bytes(b"\n")
    with pytest.raises(SecretError, match=message) as exc:
        Secret.from_file(p)
    assert isinstance(exc.value, LinkageError)


def test_from_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(ENV_VAR, raising=False)
    with pytest.raises(SecretError, match="--secret-file"):
        Secret.from_env()
    with pytest.raises(SecretError, match=ENV_VAR):
        Secret.resolve(None)
    monkeypatch.setenv(ENV_VAR, "")
    with pytest.raises(SecretError):
        Secret.from_env()
    monkeypatch.setenv(ENV_VAR, KEY.decode())
    assert Secret.from_env().key_check(FP) == Secret(KEY).key_check(FP)
    assert Secret.resolve(None).key_check(FP) == Secret(KEY).key_check(FP)
    # a file, when given, wins over the environment
    other = tmp_path / "other.key"
    other.write_bytes(b"x" * 32)
    assert Secret.resolve(other).key_check(FP) == Secret(b"x" * 32).key_check(FP)


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
        Secret(b"y" * 32).field_key(FP, "surname"),
    ]
    assert len(set(keys)) == len(keys)
    assert all(len(k) == 32 for k in keys)
    assert s.field_key(FP, "surname") == Secret(KEY).field_key(FP, "surname")
    assert KEY not in b"".join(keys)


def test_key_check() -> None:
    a = Secret(KEY).key_check(FP)
    assert a == Secret(KEY).key_check(FP)
    assert len(a) == 32 and int(a, 16) >= 0
    assert a != Secret(KEY[:-1] + b"!").key_check(FP)  # different secret
    doc = uk_person_template()
    doc["filter"]["length"] = 2048
    assert a != Secret(KEY).key_check(Schema.from_dict(doc).fingerprint)  # different schema
    assert not _leaks(a)
    assert a not in (Secret(KEY).field_key(FP, "key-check").hex(), FP)


# -- keygen ---------------------------------------------------------------------------------------
def test_write_new_secret_mode_and_refusal(tmp_path: Path) -> None:
    p = tmp_path / "secret.key"
    write_new_secret(p)
    assert stat.S_IMODE(p.stat().st_mode) == 0o600
    first = p.read_bytes()
    assert len(first) == 32
    Secret.from_file(p)
    with pytest.raises(SecretError, match="refusing to overwrite"):
        write_new_secret(p)
    assert p.read_bytes() == first
    write_new_secret(p, force=True)
    assert p.read_bytes() != first
    assert stat.S_IMODE(p.stat().st_mode) == 0o600
    assert sorted(os.listdir(tmp_path)) == ["secret.key"]
    with pytest.raises(SecretError, match="does not exist"):
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
    key = p.read_bytes()
    assert len(key) == 32
    assert not _leaks(r.output, key)
    r2 = runner.invoke(main, ["keygen", "-o", str(p)])
    assert r2.exit_code == 2
    assert r2.output.startswith("Error:") and "already exists" in r2.output
    assert "Traceback" not in r2.output
    assert p.read_bytes() == key
    r3 = runner.invoke(main, ["keygen", "-o", str(p), "--force"])
    assert r3.exit_code == 0 and p.read_bytes() != key
    assert sorted(os.listdir(tmp_path)) == ["k.key"]
