"""``trajops users``: people who sign in to the dashboard and the API, with a role each.

Roles: ``viewer`` reads, ``operator`` also promotes, rolls back and runs experiments, ``admin``
also manages users and keys. A password is given on stdin (``--password-stdin``, for scripts)
or generated and printed once. Every change is written to the audit trail.
"""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer
from rich.table import Table

from trajops.cli._common import JsonOpt, console, load_settings, opened_store
from trajops.cli.keys import audit_event
from trajops.security.users import UserInfo, Users, generate_password

app = typer.Typer(
    no_args_is_help=True, help="People: create, list, disable users, reset passwords, set roles."
)

PasswordStdin = Annotated[
    bool,
    typer.Option(
        "--password-stdin",
        help="Read the password from the first line of stdin instead of generating one.",
    ),
]
AsJson = JsonOpt
Name = Annotated[str, typer.Argument(help="User name (lower-case letters, digits, . _ @ -).")]


def _password(from_stdin: bool) -> tuple[str, bool]:
    """The password and whether it was generated (and so must be shown)."""
    if not from_stdin:
        return generate_password(), True
    return sys.stdin.readline().rstrip("\r\n"), False


def _report(user: UserInfo, *, verb: str, as_json: bool, password: str | None = None) -> None:
    out = user.to_dict()
    if password is not None:
        out["password"] = password
    if as_json:
        typer.echo(json.dumps(out))
        return
    typer.echo(f"{verb} user {user.name} ({user.role.value}, {out['status']})")
    if password is not None:
        typer.echo("Store the password now: it is shown only once.")
        typer.echo(password)


@app.command("create")
def create(
    name: Name,
    role: Annotated[
        str, typer.Option("--role", help="viewer, operator or admin.", show_default=True)
    ] = "viewer",
    password_stdin: PasswordStdin = False,
    as_json: AsJson = False,
) -> None:
    """Create a user; prints a generated password once.

    The password is alone on the last line (or in the JSON); --password-stdin reads one instead.
    """
    password, generated = _password(password_stdin)
    settings = load_settings()
    with opened_store(settings) as store:
        user = Users(store).create(name=name, role=role, password=password)
        audit_event(store, "users.create", {"user": user.name, "role": user.role.value})
    _report(user, verb="created", as_json=as_json, password=password if generated else None)


@app.command("list")
def list_cmd(as_json: AsJson = False) -> None:
    """List users (never passwords).

    Name, role, where they sign in (password or single sign-on), status and dates.
    """
    settings = load_settings()
    with opened_store(settings) as store:
        users = Users(store).list()
    if as_json:
        typer.echo(json.dumps([u.to_dict() for u in users], indent=2))
        return
    table = Table("name", "role", "source", "status", "created", "last login")
    for u in users:
        d = u.to_dict()
        table.add_row(
            d["name"], d["role"], d["source"], d["status"],
            d["created_at"][:19], (d["last_login_at"] or "-")[:19],
        )  # fmt: skip
    console.print(table)


@app.command("disable")
def disable(name: Name, as_json: AsJson = False) -> None:
    """Disable a user: sessions end, keys stop.

    Running servers refuse their keys within the key cache time (TRAJOPS_API_KEY_CACHE_S).
    """
    settings = load_settings()
    with opened_store(settings) as store:
        user = Users(store).disable(name)
        audit_event(store, "users.disable", {"user": user.name})
    _report(user, verb="disabled", as_json=as_json)


@app.command("enable")
def enable(name: Name, as_json: AsJson = False) -> None:
    """Enable a disabled user again."""
    settings = load_settings()
    with opened_store(settings) as store:
        user = Users(store).enable(name)
        audit_event(store, "users.enable", {"user": user.name})
    _report(user, verb="enabled", as_json=as_json)


@app.command("set-role")
def set_role(
    name: Name,
    role: Annotated[str, typer.Argument(help="viewer, operator or admin.")],
    as_json: AsJson = False,
) -> None:
    """Change a user's role; their sessions end.

    The next sign-in carries the new role; keys they own keep only what the role grants.
    """
    settings = load_settings()
    with opened_store(settings) as store:
        user = Users(store).set_role(name, role)
        audit_event(store, "users.set_role", {"user": user.name, "role": user.role.value})
    _report(user, verb="updated", as_json=as_json)


@app.command("reset-password")
def reset_password(
    name: Name, password_stdin: PasswordStdin = False, as_json: AsJson = False
) -> None:
    """Give a user a new password; their sessions end.

    The password is generated and shown once, unless --password-stdin reads one.
    """
    password, generated = _password(password_stdin)
    settings = load_settings()
    with opened_store(settings) as store:
        user, password = Users(store).reset_password(name, password)
        audit_event(store, "users.reset_password", {"user": user.name})
    _report(user, verb="reset", as_json=as_json, password=password if generated else None)
