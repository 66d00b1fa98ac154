"""``trajops audit``: verify the hash chain of the audit trail and export it as JSON lines."""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer

from trajops.cli._common import JsonOpt, emit_json, err_console, load_settings, opened_store
from trajops.errors import ValidationError
from trajops.security._time import parse_past
from trajops.security.audit import export_audit, verify_and_checkpoint
from trajops.security.audit_anchors import AnchorLog

app = typer.Typer(no_args_is_help=True, help="Verify and export the hash-chained audit trail.")

EXIT_TAMPERED = 1


def _parse_expect(text: str) -> tuple[int, str]:
    row, _, digest = text.partition(":")
    if not row.isdigit() or len(digest) != 64:
        raise ValidationError(
            f"invalid --expect {text!r}: expected ID:HASH as printed by 'trajops audit verify'",
            details=[{"loc": ["expect"], "msg": "expected ID:HASH"}],
        )
    return int(row), digest.lower()


@app.command("verify")
def verify(
    expect: Annotated[
        str | None,
        typer.Option(
            "--expect",
            help="ID:HASH of a row recorded earlier (e.g. a previous head); detects truncation.",
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Check the audit chain; exit 1 names the first bad row.

    Checks every row's hash and link, and the signed checkpoints of the chain's head kept
    outside the store; an intact chain's head is checkpointed.
    """
    expected = _parse_expect(expect) if expect else None
    settings = load_settings()
    with opened_store(settings) as store:
        result = verify_and_checkpoint(store, AnchorLog.from_settings(settings), expect=expected)
    if as_json:
        emit_json(asdict(result))
        if not result.ok:
            raise typer.Exit(EXIT_TAMPERED)
        return
    if not result.ok:
        err_console.print(
            f"[red]audit chain TAMPERED[/red] at row {result.first_bad_id}: {result.reason} "
            f"({result.checked} rows verified before it)",
            highlight=False,
        )
        raise typer.Exit(EXIT_TAMPERED)
    typer.echo(f"audit chain ok: {result.checked} rows verified")
    if result.head_id is not None:
        typer.echo(f"head: {result.head_id}:{result.head_hash}")


@app.command("export")
def export(
    since: Annotated[
        str, typer.Option("--since", help="Start: a duration back from now (7d) or an ISO date.")
    ],
    until: Annotated[
        str | None, typer.Option("--until", help="End (exclusive): a duration back or an ISO date.")
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="File to write; default: stdout.")
    ] = None,
) -> None:
    """Export audit rows (with their hashes) as JSON lines, oldest first."""
    start = parse_past(since, field="since")
    end = parse_past(until, field="until") if until else None
    with opened_store(load_settings()) as store:
        lines = (
            json.dumps(row, sort_keys=True) + "\n"
            for row in export_audit(store, since=start, until=end)
        )
        if output is None:
            for line in lines:
                typer.echo(line, nl=False)
            return
        # Written aside and renamed: an interrupted export never leaves a partial file.
        tmp = output.with_name(output.name + ".partial")
        count = 0
        with tmp.open("w", encoding="utf-8") as fh:
            for line in lines:
                fh.write(line)
                count += 1
        os.replace(tmp, output)
    err_console.print(f"wrote {count} audit rows to {output}", highlight=False)
