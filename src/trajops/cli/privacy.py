"""``trajops privacy``: retention purge and data-subject rights (erasure, access)."""

from __future__ import annotations

import json
import os
from datetime import timedelta
from pathlib import Path
from typing import Annotated

import typer

from trajops._duration import parse_duration
from trajops.cli._common import JsonOpt, emit_json, err_console, load_settings, opened_store
from trajops.privacy.pseudonym import Pseudonymiser, load_or_create_key
from trajops.privacy.retention import purge
from trajops.privacy.subjects import erase_subject, export_subject

app = typer.Typer(
    no_args_is_help=True, help="Retention purge, erasure and export of a subject's data."
)


@app.command("purge")
def purge_cmd(
    older_than: Annotated[
        str | None,
        typer.Option(
            "--older-than",
            help="Delete predictions and feedback older than this (30d); default: TRAJOPS_RETENTION_DAYS.",
        ),
    ] = None,
    audit_older_than: Annotated[
        str | None,
        typer.Option(
            "--audit-older-than",
            help="Delete audit rows older than this (365d); default: TRAJOPS_AUDIT_RETENTION_DAYS.",
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only count what would be deleted.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Apply the retention periods (recorded in the audit trail)."""
    settings = load_settings()
    keep = (
        parse_duration(older_than, field="older-than")
        if older_than
        else timedelta(days=settings.retention_days)
    )
    keep_audit = (
        parse_duration(audit_older_than, field="audit-older-than")
        if audit_older_than
        else timedelta(days=settings.audit_retention_days)
    )
    with opened_store(settings) as store:
        report = purge(store, older_than=keep, audit_older_than=keep_audit, dry_run=dry_run)
    if as_json:
        emit_json(report.to_dict())
        return
    verb = "would delete" if dry_run else "deleted"
    typer.echo(
        f"{verb} {report.predictions} predictions, {report.feedback} feedback rows and "
        f"{report.experiment_rows} experiment rows older than "
        f"{report.cutoff.isoformat()}, {report.audit_rows} audit rows older than {report.audit_cutoff.isoformat()}"
    )
    if report.anchor_id is not None:
        typer.echo(f"audit chain anchored at row {report.anchor_id}")


@app.command("erase")
def erase(
    subject: Annotated[
        str, typer.Option("--subject", help="The agent/subject id as sent to the API.")
    ],
    as_json: JsonOpt = False,
) -> None:
    """Delete every row of a subject and audit the erasure.

    Rows are found by the subject's pseudonym; the audit row holds that reference, never the
    id itself.
    """
    settings = load_settings()
    pseudonymise = Pseudonymiser(load_or_create_key(settings))
    with opened_store(settings) as store:
        report = erase_subject(store, pseudonymise, subject, spool_dir=settings.spool_dir)
    if as_json:
        emit_json(report.to_dict())
    else:
        typer.echo(
            f"erased {report.predictions} predictions, {report.feedback} feedback rows and "
            f"{sum(report.experiment_rows.values())} experiment rows; "
            f"recorded as audit row {report.audit_id} (subject ref {report.subject_ref})"
        )
    if report.pending_spooled:
        err_console.print(
            f"[yellow]warning:[/yellow] {report.pending_spooled} rows of this subject still wait in "
            f"the spool ({settings.spool_dir}); run the erasure again once the store has caught up",
            highlight=False,
        )


@app.command("export")
def export(
    subject: Annotated[
        str, typer.Option("--subject", help="The agent/subject id as sent to the API.")
    ],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="File to write; default: stdout.")
    ] = None,
) -> None:
    """Print everything stored about a subject as JSON (right of access)."""
    settings = load_settings()
    pseudonymise = Pseudonymiser(load_or_create_key(settings))
    with opened_store(settings) as store:
        document = export_subject(store, pseudonymise, subject)
    text = json.dumps(document, indent=2, sort_keys=True)
    if output is None:
        typer.echo(text)
        return
    tmp = output.with_name(output.name + ".partial")
    tmp.write_text(text + "\n", encoding="utf-8")
    os.replace(tmp, output)
    err_console.print(
        f"wrote {len(document['predictions'])} predictions and {len(document['feedback'])} feedback rows to {output}",
        highlight=False,
    )
