"""``trajops keys``: create, list, revoke and rotate API keys (only their hashes are stored)."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from trajops.cli._common import JsonOpt, console, load_settings, opened_store
from trajops.security._time import parse_future
from trajops.security.audit import AuditRecord, append_audit
from trajops.security.keys import ApiKeys, KeyInfo
from trajops.store.db import Store

app = typer.Typer(no_args_is_help=True, help="Create, list, revoke and rotate API keys.")


def audit_event(store: Store, event: str, details: dict[str, object]) -> None:
    """Append one CLI action (``event``: ``keys.create``, ``users.disable``...) to the audit trail."""
    append_audit(
        store,
        [
            AuditRecord(
                route=f"trajops {event.replace('.', ' ')}",
                method="CLI",
                status=0,
                event=event,
                details=details,
            )
        ],
    )


def _print_new(info: KeyInfo, token: str, verb: str, *, as_json: bool = False) -> None:
    if as_json:
        typer.echo(json.dumps({**info.to_dict(), "token": token}))
        return
    expires = info.expires_at.isoformat() if info.expires_at else "never"
    typer.echo(
        f"{verb} API key {info.id} ({info.name}); scopes: {','.join(sorted(info.scopes))}; expires: {expires}"
    )
    typer.echo("Store the key now: it is shown only once and cannot be recovered.")
    typer.echo(token)


@app.command("create")
def create(
    name: Annotated[
        str, typer.Option("--name", help="Who or what uses the key (e.g. a service name).")
    ],
    scopes: Annotated[
        str,
        typer.Option(
            "--scopes", help="Comma-separated scopes: predict, pin, feedback, read, operate, admin."
        ),
    ] = "predict",
    expires: Annotated[
        str | None,
        typer.Option("--expires", help="Lifetime (30d, 12h) or ISO date; default: never."),
    ] = None,
    owner: Annotated[
        str | None,
        typer.Option(
            "--owner",
            help="User the key belongs to: it carries at most their role's scopes and stops when they are disabled.",
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Create a key and print it once, alone on the last line of stdout."""
    settings = load_settings()
    expires_at = parse_future(expires, field="expires") if expires else None
    with opened_store(settings) as store:
        info, token = ApiKeys.from_settings(settings, store).create_key(
            name=name, scopes=scopes, expires_at=expires_at, owner=owner
        )
        audit_event(
            store,
            "keys.create",
            {"key_id": info.id, "scopes": sorted(info.scopes), "owner": info.user},
        )
    _print_new(info, token, "created", as_json=as_json)


@app.command("list")
def list_cmd(
    as_json: JsonOpt = False,
    active: Annotated[bool, typer.Option("--active", help="Hide revoked keys.")] = False,
) -> None:
    """List keys (never the key itself).

    Id, name, owner, scopes, status and dates.
    """
    settings = load_settings()
    with opened_store(settings) as store:
        keys = ApiKeys.from_settings(settings, store).list_keys(include_revoked=not active)
    if as_json:
        typer.echo(json.dumps([k.to_dict() for k in keys], indent=2))
        return
    table = Table("id", "name", "owner", "scopes", "status", "created", "expires", "last used")
    for k in keys:
        d = k.to_dict()
        table.add_row(
            d["id"], d["name"], d["owner"] or "-", ",".join(d["scopes"]), d["status"],
            (d["created_at"] or "")[:19], (d["expires_at"] or "never")[:19], (d["last_used_at"] or "-")[:19],
        )  # fmt: skip
    console.print(table)


@app.command("revoke")
def revoke(
    key_id: Annotated[str, typer.Argument(help="Id of the key to revoke.")],
    as_json: JsonOpt = False,
) -> None:
    """Revoke a key.

    Refused at once by this process, within the key cache time by running servers.
    """
    settings = load_settings()
    with opened_store(settings) as store:
        info = ApiKeys.from_settings(settings, store).revoke_key(key_id)
        audit_event(store, "keys.revoke", {"key_id": info.id})
    if as_json:
        typer.echo(json.dumps(info.to_dict()))
        return
    typer.echo(
        f"revoked API key {info.id} ({info.name}); running servers refuse it within {settings.api_key_cache_s:g} s"
    )


@app.command("rotate")
def rotate(
    key_id: Annotated[str, typer.Argument(help="Id of the key to replace.")],
    expires: Annotated[
        str | None,
        typer.Option(
            "--expires", help="Lifetime of the new key (30d) or ISO date; default: as the old one."
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Replace a key by a new one; the old key is revoked.

    The new key has the same name, scopes and owner, and is printed once.
    """
    settings = load_settings()
    expires_at = parse_future(expires, field="expires") if expires else None
    with opened_store(settings) as store:
        info, token = ApiKeys.from_settings(settings, store).rotate_key(
            key_id, expires_at=expires_at
        )
        audit_event(store, "keys.rotate", {"key_id": key_id, "replaced_by": info.id})
    if not as_json:
        typer.echo(f"revoked API key {key_id}")
    _print_new(info, token, "created", as_json=as_json)
