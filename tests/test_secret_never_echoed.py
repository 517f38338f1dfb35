"""A value that looks like the project secret is never repeated in a message (new-user
finding: `--secret-file "$(cat secret.key)"` printed the secret in its error)."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from linkage._files import OutputError, check_outputs
from linkage.cli import main
from linkage.errors import SecretError
from linkage.schema_template import uk_person_unhardened
from linkage.secret import (
    ENV_VAR,
    TEXT_PREFIX,
    Secret,
    hide_secrets,
    looks_like_secret,
    secret_text,
)

KEY = hashlib.sha256(b"never echoed").digest()
TEXT = secret_text(KEY)
BODY = TEXT[len(TEXT_PREFIX) :]
ADVICE = "this looks like the secret itself"


def _leaks(text: str) -> bool:
    flat = text.replace("-", "").upper()
    return BODY.replace("-", "").upper()[:20] in flat or BODY[:14] in text


def _cli(args: list[str], env: dict[str, str | None] | None = None) -> tuple[int, str]:
    full: dict[str, str | None] = {ENV_VAR: None}
    full.update(env or {})
    r = CliRunner().invoke(main, args, env=full)
    return r.exit_code, r.output


@pytest.fixture
def work(tmp_path: Path) -> Path:
    (tmp_path / "in.csv").write_text("record_id,surname\nr1,Smith\n", encoding="utf-8")
    (tmp_path / "schema.json").write_text(json.dumps(uk_person_unhardened()), encoding="utf-8")
    key = tmp_path / "secret.key"
    key.write_text(TEXT + "\n")
    key.chmod(0o600)
    return tmp_path


# the forms a pasted secret takes: as keygen writes it, lower case, no dashes, no prefix
FORMS = [TEXT, TEXT.lower(), TEXT.replace("-", ""), BODY, BODY.lower(), TEXT + "\n"]


@pytest.mark.parametrize("form", FORMS)
def test_secret_forms_are_recognised_and_hidden(form: str) -> None:
    assert looks_like_secret(form)
    msg = hide_secrets(f"secret file {form.strip()} not found")
    assert not _leaks(msg) and ADVICE in msg and "not found" in msg


@pytest.mark.parametrize(
    "value", ["secret.key", "/tmp/a-b-c.key", "0" * 56, "a" * 64, hashlib.sha256().hexdigest()]
)
def test_ordinary_values_are_left_alone(value: str) -> None:
    assert not looks_like_secret(value)
    assert hide_secrets(f"{value}: file not found") == f"{value}: file not found"


def test_prefix_alone_is_hidden_even_when_mistyped() -> None:
    bad = TEXT[:-3] + "ZZZ"  # checksum fails: still the secret's text, nearly
    assert looks_like_secret(bad) and not _leaks(hide_secrets(f"x {bad} y"))


@pytest.mark.parametrize("form", [TEXT, BODY])
def test_from_file_given_the_secret_says_so(form: str) -> None:
    with pytest.raises(SecretError) as exc:
        Secret.from_file(form)
    assert ADVICE in str(exc.value) and not _leaks(str(exc.value))


@pytest.mark.parametrize("style", ["separate", "equals"])
def test_cli_secret_file_given_the_secret(work: Path, style: str) -> None:
    opt = ["--secret-file", TEXT] if style == "separate" else [f"--secret-file={TEXT}"]
    code, out = _cli(
        [
            "encode",
            str(work / "in.csv"),
            "-s",
            str(work / "schema.json"),
            *opt,
            "--party",
            "a",
            "-o",
            str(work / "a.parquet"),
        ]
    )
    assert code == 2 and ADVICE in out and not _leaks(out), out
    assert "--secret-file FILE" in out and ENV_VAR in out


@pytest.mark.parametrize(
    "where",
    [
        "input",
        "output",
        "rejects",
        "schema",
        "extra-argument",
        "column",
        "column-value",
        "truth",
        "map-output",
        "wait",
    ],
)
def test_cli_never_echoes_a_secret_given_anywhere(work: Path, where: str) -> None:
    """Every path a user string takes to a message: reader errors naming files, output
    checks, click's own usage errors, option parsing, the lab and map commands."""
    inp, out, schema = str(work / "in.csv"), str(work / "a.parquet"), str(work / "schema.json")
    base = ["--secret-file", str(work / "secret.key"), "--party", "a"]
    args = {
        "input": ["encode", TEXT, "-s", schema, *base, "-o", out],
        "output": ["encode", inp, "-s", schema, *base, "-o", TEXT],
        "rejects": ["encode", inp, "-s", schema, *base, "-o", out, "--rejects", TEXT],
        "schema": ["encode", inp, "-s", TEXT, *base, "-o", out],
        "extra-argument": ["keygen", "-o", str(work / "k.key"), TEXT],
        "column": ["encode", inp, "-s", schema, *base, "-o", out, "--column", TEXT],
        "column-value": [
            "encode",
            inp,
            "-s",
            schema,
            *base,
            "-o",
            out,
            "--column",
            "surname=" + TEXT,
        ],
        "truth": ["evaluate", TEXT, "--truth", TEXT],
        "wait": ["map", "update", str(work / "m.duckdb"), "--wait", TEXT],
        "map-output": ["map", "links", str(work / "m.duckdb"), "-o", TEXT],
    }[where]
    code, text = _cli(args)
    assert code == 2 and "Error:" in text and "internal error" not in text, text
    assert ADVICE in text and not _leaks(text), text
    assert not any(TEXT_PREFIX.rstrip(":") in p.name for p in work.iterdir())


def test_output_named_like_the_secret_is_refused(tmp_path: Path) -> None:
    with pytest.raises(OutputError, match=ADVICE) as exc:
        check_outputs([tmp_path / TEXT])
    assert not _leaks(str(exc.value))
    assert os.listdir(tmp_path) == []


def test_two_secrets_are_refused(work: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_VAR, TEXT)
    with pytest.raises(SecretError, match="two secrets"):
        Secret.resolve(work / "secret.key")
    code, out = _cli(
        ["encode", str(work / "in.csv"), "-s", str(work / "schema.json"), "--secret-file",
         str(work / "secret.key"), "--party", "a", "-o", str(work / "a.parquet")],
        env={ENV_VAR: TEXT},
    )  # fmt: skip
    assert code == 2 and "two secrets given" in out and not _leaks(out), out
    assert not (work / "a.parquet").exists()


def test_library_errors_never_echo_a_secret(tmp_path: Path) -> None:
    """Not only the CLI: every LinkageError hides it (a reader error naming the file)."""
    from linkage.errors import InputError
    from linkage.partner.reader import InputFile

    with pytest.raises(InputError) as exc:
        InputFile(TEXT)
    assert ADVICE in str(exc.value) and not _leaks(str(exc.value))
    with pytest.raises(InputError) as exc:
        InputFile(tmp_path / BODY.lower())
    assert ADVICE in str(exc.value) and not _leaks(str(exc.value))


@pytest.mark.parametrize("tail", [")", ". Typed", "", " (as keygen writes it)", "\n"])
def test_bare_prefix_in_advice_text_is_kept(tail: str) -> None:
    msg = f"x.key does not hold a linkage secret: give the text (it starts {TEXT_PREFIX}{tail}"
    assert hide_secrets(msg) == msg


@pytest.mark.parametrize("cut", [4, 12, 30])
def test_prefix_with_part_of_a_key_is_still_hidden(cut: int) -> None:
    msg = hide_secrets(f"bad value {TEXT[: len(TEXT_PREFIX) + cut]} given")
    assert TEXT_PREFIX not in msg and ADVICE in msg


@pytest.mark.parametrize("content", ["hunter2 is my passphrase", "", "  \n"])
def test_secret_file_without_prefix_error_keeps_its_advice(work: Path, content: str) -> None:
    bad = work / "pass.key"
    bad.write_text(content)
    bad.chmod(0o600)
    code, out = _cli(
        [
            "encode",
            str(work / "in.csv"),
            "--schema",
            str(work / "schema.json"),
            "--secret-file",
            str(bad),
            "--party",
            "a",
            "-o",
            str(work / "o.parquet"),
        ]
    )
    assert code == 2 and ADVICE not in out, out
    if content.strip():
        assert TEXT_PREFIX in out, out


def test_env_passphrase_error_keeps_its_advice(work: Path) -> None:
    code, out = _cli(
        [
            "encode",
            str(work / "in.csv"),
            "--schema",
            str(work / "schema.json"),
            "--party",
            "a",
            "-o",
            str(work / "o.parquet"),
        ],
        env={ENV_VAR: "correct horse battery staple"},
    )
    assert code == 2 and ADVICE not in out and TEXT_PREFIX in out, out
    assert "correct horse" not in out


@pytest.mark.parametrize(
    ("where", "option"),
    [
        ("map-project", "--project"),
        ("map-project-bare", "--project"),
        ("encode-party", "--party"),
        ("encode-id-column", "--id-column"),
        ("audit-id-column", "--id-column"),
        ("match-argument", "INPUTS"),
    ],
)
def test_cli_refuses_a_secret_given_to_any_option(work: Path, where: str, option: str) -> None:
    """A tester's `map export --project "$(cat secret.key)"` ran (rc 0), printed the secret
    and stored it in the pseudonym file's metadata: every option value is checked, not only
    the paths; the refusal names the option and writes nothing."""
    inp, out, schema = str(work / "in.csv"), str(work / "a.parquet"), str(work / "schema.json")
    base = ["--secret-file", str(work / "secret.key")]
    args = {
        "map-project": ["map", "export", str(work / "m.duckdb"), "--project", TEXT,
                        "--key-file", str(work / "tlu.key"), "-o", out],
        "map-project-bare": ["map", "export", str(work / "m.duckdb"), "--project", BODY,
                             "--key-file", str(work / "tlu.key"), "-o", out],
        "encode-party": ["encode", inp, "-s", schema, *base, "--party", TEXT, "-o", out],
        "encode-id-column": ["encode", inp, "-s", schema, *base, "--party", "a", "-o", out,
                             "--id-column", TEXT],
        "audit-id-column": ["audit", "-s", schema, "--plaintext", inp, "--id-column", TEXT,
                            "--reference", inp],
        "match-argument": ["match", str(work / "a1.parquet"), TEXT, "-o", out],
    }[where]  # fmt: skip
    before = sorted(p.name for p in work.iterdir())
    code, text = _cli(args)
    assert code == 2 and f"{option}: {ADVICE}" in text, text
    assert not _leaks(text), text
    assert sorted(p.name for p in work.iterdir()) == before


def test_cli_seed_must_not_be_negative(work: Path) -> None:
    """`--seed -1` failed only after all the work, as an internal error (numpy's generator)."""
    from linkage.tlu.linker import check_seed

    code, text = _cli(["synth", "-o", str(work / "s"), "--people", "50", "--seed", "-1"])
    assert code == 2 and "--seed" in text and "internal error" not in text, text
    for bad in (-1, 1.5, True, "3"):
        with pytest.raises(Exception, match="--seed must be a whole number >= 0"):
            check_seed(bad)
    check_seed(None)
    check_seed(0)
