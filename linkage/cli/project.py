"""Commands that set a project up: ``keygen`` and ``schema init|check``."""

from __future__ import annotations

from pathlib import Path

import click

from linkage.cli.common import (
    _warn,
    handle_errors,
    main,
)


@main.command()
@click.option(
    "-o", "--output", required=True, type=click.Path(dir_okay=False), help="File to write."
)
@click.option("--force", is_flag=True, help="Replace an existing file (its secret is lost).")
@handle_errors
def keygen(output: str, force: bool) -> None:
    """Write a new project secret: 256 random bits as one line of text (file mode 0600).

    The line (linkage-secret-v1:XXXX-XXXX-...) carries a checksum, so it can be pasted, sent
    on paper and typed back, or put unchanged in the LINKAGE_SECRET environment variable
    (LINKAGE_SECRET="$(cat secret.key)"); a mistyped secret is refused at once. Share it only
    among the partners, out of band; never with the linkage unit. Every partner must encode
    with the same secret and schema.
    """
    from linkage.secret import write_new_secret

    write_new_secret(output, force=force)
    click.echo(f"wrote a new secret to {output} (mode 0600)", err=True)


@main.group()
def schema() -> None:
    """Create and check linkage schemas (shared by all partners of a project)."""


@schema.command("init")
@click.option(
    "--template",
    default="uk-person",
    show_default=True,
    type=click.Choice(["uk-person", "uk-person-fields", "uk-person-unhardened"]),
    help="Starting point. uk-person is hardened against the published attacks (see "
    "docs/privacy.md); uk-person-fields (segmented layout, diffused per field) links by "
    "field-aware scoring (better F1, docs/quality.md) but is not safe against the audit's "
    "graph matching, and prints its measured risk; uk-person-unhardened is an explicit "
    "opt-out that prints its measured re-identification risk.",
)
@click.option(
    "-o", "--output", required=True, type=click.Path(dir_okay=False), help="File to write (.json)."
)
@click.option("--force", is_flag=True, help="Replace an existing file.")
@handle_errors
def schema_init(template: str, output: str, force: bool) -> None:
    """Write a commented starting schema: the template's fields (for uk-person: given_name,
    surname, date_of_birth, sex, postcode, address, nhs_number) with their weights, and its
    keyed block keys. Check it with `linkage schema check`."""
    from linkage._files import JSON, Output, atomic_outputs, check_outputs
    from linkage.schema_template import template_json

    (p,) = check_outputs([Output(Path(output), "schema", JSON)], force=force)
    text = template_json(template)
    with atomic_outputs(p, mode=0o644) as (tmp,):
        tmp.write_text(text, encoding="utf-8")
    click.echo(f"wrote schema template {template!r} to {output}", err=True)
    from linkage.schema import Schema
    from linkage.schema_template import TEMPLATES, risk_warnings

    for msg in risk_warnings(Schema.from_dict(TEMPLATES[template]())):
        _warn(msg)


@schema.command("check")
@click.argument("schema_file", type=click.Path(dir_okay=False))
@handle_errors
def schema_check(schema_file: str) -> None:
    """Validate a schema and summarise it (errors name the JSON path); a schema without
    hardening or with the segmented layout also gets its measured risk (docs/privacy.md)."""
    from linkage.schema import Schema

    s = Schema.load(schema_file)
    click.echo(s.summary())
    from linkage.schema_template import risk_warnings

    for msg in risk_warnings(s):  # a partner checking a schema it was sent learns the risk
        _warn(msg)
