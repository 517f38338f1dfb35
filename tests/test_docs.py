"""Docs that cannot go stale (issue 10 item 18): the README's code blocks run as written; every
command has help, every option has help, every ``--option`` a help text names exists on the
command it names; every command is documented; the README's library example maps the same
columns as its CLI example."""

from __future__ import annotations

import ast
import re
import shlex
import shutil
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from linkage.cli import main
from linkage.secret import ENV_VAR

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
DOCS = README + "".join(p.read_text(encoding="utf-8") for p in sorted((ROOT / "docs").glob("*.md")))
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)


def blocks(text: str, lang: str) -> list[str]:
    return [body for kind, body in FENCE.findall(text) if kind == lang]


def commands(
    group: click.Group = main, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    for name, cmd in sorted(group.commands.items()):
        yield (*path, name), cmd
        if isinstance(cmd, click.Group):
            yield from commands(cmd, (*path, name))


ALL = dict(commands())


def shell_lines(block: str) -> list[str]:
    """Commands of a shell block: comments dropped, backslash continuations joined."""
    out, cur = [], ""
    for raw in block.splitlines():
        line = raw.split(" #", 1)[0].rstrip() if not raw.lstrip().startswith("#") else ""
        if not line.strip() and not cur:
            continue
        if line.endswith("\\"):
            cur += line[:-1] + " "
            continue
        out.append((cur + line).strip())
        cur = ""
    return [c for c in out if c]


def _program(line: str) -> str:
    """The program a shell line runs (after any NAME=value environment assignments)."""
    words = shlex.split(line)
    while words and re.fullmatch(r"\w+=.*", words[0], re.S):
        words.pop(0)
    return words[0] if words else ""


def run_shell_line(line: str, cwd: Path) -> None:
    words = shlex.split(line)
    env: dict[str, str | None] = {ENV_VAR: None}
    while "=" in words[0] and not words[0].startswith("-"):
        name, _, value = words.pop(0).partition("=")
        m = re.fullmatch(r"\$\(cat (\S+)\)", value)
        env[name] = (cwd / m.group(1)).read_text().rstrip("\n") if m else value
    assert words[0] == "linkage", line
    r = CliRunner().invoke(main, words[1:], env=env)
    assert r.exit_code == 0, (line, r.output, r.exception)


@pytest.fixture(scope="module")
def readme_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The README's `linkage` shell blocks, run as written in a copy of the repository's
    examples (what `make` lines do is tested elsewhere)."""
    d = tmp_path_factory.mktemp("readme")
    shutil.copytree(ROOT / "examples", d / "examples")
    ran = 0
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(d)  # the README's paths are relative
        for block in blocks(README, "sh"):
            lines = shell_lines(block)
            if not all(_program(c) == "linkage" for c in lines):
                continue  # `make ...`
            for line in lines:
                run_shell_line(line, d)
                ran += 1
    assert ran >= 6
    return d


def test_readme_shell_blocks_run(readme_run: Path) -> None:
    for name in ("secret.key", "schema.json", "council_a.parquet", "council_b.parquet"):
        assert (readme_run / name).exists(), name
    assert (readme_run / "links.parquet").stat().st_mode & 0o777 == 0o600


def test_readme_python_blocks_run(readme_run: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(readme_run)
    code = blocks(README, "python")
    assert code
    for body in code:
        exec(compile(body, "README.md", "exec"), {})


def _cli_mappings() -> dict[str, dict[str, str]]:
    out = {}
    for block in blocks(README, "sh"):
        for line in shell_lines(block):
            words = shlex.split(line)
            if "encode" not in words:
                continue
            party = words[words.index("--party") + 1]
            cols = [words[i + 1] for i, w in enumerate(words) if w == "--column"]
            out[party] = dict(c.split("=", 1) for c in cols)
    return out


def _library_mappings() -> dict[str, dict[str, str]]:
    out = {}
    for body in blocks(README, "python"):
        for node in ast.walk(ast.parse(body)):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "encode":
                kw = {k.arg: k.value for k in node.keywords}
                out[ast.literal_eval(kw["party"])] = ast.literal_eval(kw.get("columns", "{}"))
    return out


def test_readme_library_example_maps_columns_like_the_cli_example() -> None:
    cli, lib = _cli_mappings(), _library_mappings()
    assert cli and cli == lib


# -- help ---------------------------------------------------------------------------------------
def _help_texts(cmd: click.Command) -> str:
    parts = [cmd.help or ""]
    parts += [p.help or "" for p in cmd.params if isinstance(p, click.Option)]
    return "\n".join(parts)


def _options(cmd: click.Command) -> set[str]:
    names = {"--help", "-h"}
    for p in cmd.params:
        if isinstance(p, click.Option):
            names |= set(p.opts) | set(p.secondary_opts)
    return names


def _resolve(words: list[str]) -> click.Command | None:
    """The command named by the words after `linkage` (longest known prefix)."""
    best = None
    for n in range(1, len(words) + 1):
        best = ALL.get(tuple(words[:n]), best)
    return best


def option_mentions(cmd: click.Command) -> list[tuple[str, click.Command, str]]:
    """(option, the command it must belong to, where) for each --option a help names."""
    text = _help_texts(cmd).replace("\\\n", " ")
    found = []
    segments = re.split(r"(`[^`]*`)", text)
    for seg in segments:
        quoted = seg.startswith("`")
        for line in seg.strip("`").splitlines():
            m = re.search(r"\blinkage ((?:[a-z][a-z-]* ?)+)", line)
            if m and (quoted or line.strip().startswith("linkage ")):
                target = _resolve(m.group(1).split())
                assert target is not None, line
                scope = line[m.start() :]
                before = line[: m.start()]
            elif quoted and (first := seg.strip("`").split()[:1]) and (first[0],) in ALL:
                target, scope, before = ALL[(first[0],)], line, ""
            else:
                target, scope, before = cmd, "", line
            for opt in re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", scope):
                found.append((opt, target, line))
            for opt in re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", before):
                found.append((opt, cmd, line))
    return found


@pytest.mark.parametrize("path", sorted(ALL), ids=" ".join)
def test_every_command_and_option_has_help(path: tuple[str, ...]) -> None:
    cmd = ALL[path]
    assert (cmd.help or "").strip(), f"linkage {' '.join(path)} has no help"
    for p in cmd.params:
        if isinstance(p, click.Option) and p.name != "help":
            assert (p.help or "").strip(), f"linkage {' '.join(path)} {p.opts[-1]} has no help"


@pytest.mark.parametrize("path", [(), *sorted(ALL)], ids=lambda p: " ".join(p) or "linkage")
def test_help_names_only_options_that_exist(path: tuple[str, ...]) -> None:
    cmd = ALL[path] if path else main
    wrong = [
        (opt, target.name, where)
        for opt, target, where in option_mentions(cmd)
        if opt not in _options(target)
    ]
    assert not wrong, wrong


@pytest.mark.parametrize("path", sorted(ALL), ids=" ".join)
def test_every_command_is_documented(path: tuple[str, ...]) -> None:
    assert f"linkage {' '.join(path)}" in DOCS, f"linkage {' '.join(path)} is in no doc"


@pytest.mark.parametrize("path", sorted(ALL), ids=" ".join)
def test_help_runs(path: tuple[str, ...]) -> None:
    r = CliRunner().invoke(main, [*path, "--help"])
    assert r.exit_code == 0 and "Usage:" in r.output


def test_schema_init_help_matches_the_template() -> None:
    from linkage.schema_template import uk_person_template

    text = ALL[("schema", "init")].help or ""
    t = uk_person_template()
    for f in t["fields"]:
        assert f["name"] in text, f["name"]
    numbers = re.findall(
        r"\b(one|two|three|four|five|six|seven|eight|\d+) (?:keyed )?block keys", text
    )
    assert not numbers or numbers == [str(len(t["block_keys"]))], numbers


def test_help_checker_catches_a_false_option() -> None:
    @click.command()
    @click.option("--real", help="See `linkage evaluate --no-such` and --also-missing.")
    def fake(real: str) -> None:
        """Run `linkage keygen --hex` (no such option)."""

    bad = {o for o, t, _ in option_mentions(fake) if o not in _options(t)}
    assert bad == {"--no-such", "--also-missing", "--hex"}
