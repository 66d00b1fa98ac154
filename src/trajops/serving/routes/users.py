"""``/v1/users`` and ``/v1/keys`` (``admin``): people and API keys, as the CLI manages them.

Passwords and tokens are shown once, in the answer that creates them. Every call is audited
by the request log with the acting user; disabling a user or revoking a key takes effect at
once in this process and within ``api_key_cache_s`` in the others.
"""

from __future__ import annotations

from typing import Annotated

import anyio.to_thread
from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from trajops.security._time import parse_future
from trajops.security.keys import ApiKeys
from trajops.security.sessions import Sessions
from trajops.security.users import generate_password
from trajops.serving.openapi import error_responses
from trajops.serving.responses import OrjsonResponse
from trajops.serving.routes.auth import SessionsDep

router = APIRouter(tags=["users"])


async def get_keys(request: Request) -> ApiKeys:
    keys: ApiKeys = request.app.state.keys
    return keys


KeysDep = Annotated[ApiKeys, Depends(get_keys)]


class CreateUser(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=64, examples=["alice"])
    role: str = Field(description="viewer, operator or admin.", examples=["viewer"])
    password: str | None = Field(
        default=None, max_length=1024, description="At least 12 characters; empty: generated."
    )


class PasswordBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    password: str | None = Field(
        default=None, max_length=1024, description="The new password; empty: generated."
    )


class RoleBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: str = Field(description="viewer, operator or admin.")


class CreateKey(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200, description="Who or what uses the key.")
    scopes: list[str] = Field(min_length=1, examples=[["predict"]])
    expires: str | None = Field(default=None, description="Lifetime (30d, 12h) or ISO date.")
    owner: str | None = Field(default=None, description="User the key belongs to.")


def _forget(sessions: Sessions, keys: ApiKeys, name: str) -> None:
    sessions.forget_user(name)
    keys.forget_user(name)


@router.get("/v1/users", summary="Users, oldest first")
async def list_users(sessions: SessionsDep) -> Response:
    users = await anyio.to_thread.run_sync(sessions.users.list)
    return OrjsonResponse([u.to_dict() for u in users])


@router.post(
    "/v1/users",
    status_code=201,
    summary="Create a user; a generated password is answered once",
    responses=error_responses(409, 422),
)
async def create_user(body: CreateUser, sessions: SessionsDep) -> Response:
    password = body.password or generate_password()
    user = await anyio.to_thread.run_sync(
        lambda: sessions.users.create(name=body.name, role=body.role, password=password)
    )
    out = user.to_dict()
    if body.password is None:
        out["password"] = password
    return OrjsonResponse(out, status_code=201)


@router.post(
    "/v1/users/{name}/disable",
    summary="Disable a user: their sessions end, their keys stop",
    responses=error_responses(404, 409),
)
async def disable_user(name: str, sessions: SessionsDep, keys: KeysDep) -> Response:
    user = await anyio.to_thread.run_sync(sessions.users.disable, name)
    _forget(sessions, keys, name)
    return OrjsonResponse(user.to_dict())


@router.post(
    "/v1/users/{name}/enable", summary="Enable a disabled user", responses=error_responses(404)
)
async def enable_user(name: str, sessions: SessionsDep) -> Response:
    user = await anyio.to_thread.run_sync(sessions.users.enable, name)
    return OrjsonResponse(user.to_dict())


@router.put(
    "/v1/users/{name}/role",
    summary="Change a user's role (their sessions end)",
    responses=error_responses(404, 409, 422),
)
async def set_role(name: str, body: RoleBody, sessions: SessionsDep, keys: KeysDep) -> Response:
    user = await anyio.to_thread.run_sync(sessions.users.set_role, name, body.role)
    _forget(sessions, keys, name)
    return OrjsonResponse(user.to_dict())


@router.post(
    "/v1/users/{name}/reset-password",
    summary="Set or generate a new password (answered once); sessions end",
    responses=error_responses(404, 409, 422),
)
async def reset_password(
    name: str, sessions: SessionsDep, keys: KeysDep, body: PasswordBody | None = None
) -> Response:
    given = body.password if body else None
    user, password = await anyio.to_thread.run_sync(sessions.users.reset_password, name, given)
    _forget(sessions, keys, name)
    out = user.to_dict()
    if given is None:
        out["password"] = password
    return OrjsonResponse(out)


@router.get("/v1/keys", summary="API keys, oldest first (never their tokens)")
async def list_keys(keys: KeysDep) -> Response:
    found = await anyio.to_thread.run_sync(keys.list_keys)
    return OrjsonResponse([k.to_dict() for k in found])


@router.post(
    "/v1/keys",
    status_code=201,
    summary="Create an API key; its token is answered once",
    responses=error_responses(404, 422),
)
async def create_key(body: CreateKey, keys: KeysDep) -> Response:
    expires_at = parse_future(body.expires, field="expires") if body.expires else None
    info, token = await anyio.to_thread.run_sync(
        lambda: keys.create_key(
            name=body.name, scopes=body.scopes, expires_at=expires_at, owner=body.owner
        )
    )
    return OrjsonResponse({**info.to_dict(), "token": token}, status_code=201)


@router.post(
    "/v1/keys/{key_id}/revoke", summary="Revoke an API key", responses=error_responses(404)
)
async def revoke_key(key_id: str, keys: KeysDep) -> Response:
    info = await anyio.to_thread.run_sync(keys.revoke_key, key_id)
    return OrjsonResponse(info.to_dict())
