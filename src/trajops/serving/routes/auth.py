"""``/v1/auth``: people sign in (password or single sign-on), see who they are, sign out.

A session token is sent back like an API key (``Authorization: Bearer``). Failed sign-ins
spend the same per-address budget as failed key checks, and an address past it is refused
before its password is hashed (argon2 is deliberately expensive).
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

import anyio.to_thread
from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import RedirectResponse, Response

from trajops.errors import (
    AuthenticationError,
    ConflictError,
    NotFoundError,
    RateLimited,
    TrajopsError,
)
from trajops.security.keys import KeyInfo
from trajops.security.oidc import FLOW_TTL_S, OidcClient
from trajops.security.ratelimit import LocalRateLimiter
from trajops.security.sessions import Sessions
from trajops.serving.deps import SettingsDep
from trajops.serving.middleware import KEY_ID_KEY, PRINCIPAL_KEY, USER_KEY
from trajops.serving.openapi import error_responses
from trajops.serving.responses import OrjsonResponse
from trajops.settings import Settings

router = APIRouter(prefix="/v1/auth", tags=["auth"])
FLOW_COOKIE = "trajops_oidc_flow"


async def get_sessions(request: Request) -> Sessions:
    sessions: Sessions = request.app.state.sessions
    return sessions


SessionsDep = Annotated[Sessions, Depends(get_sessions)]


class LoginRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)


class CodeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(min_length=1, max_length=200, description="The one-time `login_code`.")


def session_body(info: KeyInfo, token: str) -> dict[str, Any]:
    """What a client keeps after signing in."""
    assert info.expires_at is not None
    return {
        "token": token,
        "token_type": "bearer",
        "expires_at": info.expires_at.isoformat(),
        "user": info.user,
        "scopes": sorted(s.value for s in info.scopes),
    }


def _address(request: Request) -> str:
    return request.client.host if request.client else ""


def _signed_in(request: Request, info: KeyInfo) -> None:
    """Name the new session in this request's audit row."""
    request.scope[KEY_ID_KEY] = info.id
    request.scope[USER_KEY] = info.user


@router.post(
    "/login",
    summary="Sign in with a user name and password; answers a session token",
    responses=error_responses(401, 422, 429, 503),
)
async def login(body: LoginRequest, request: Request, sessions: SessionsDep) -> Response:
    failures: LocalRateLimiter = request.app.state.auth_failures
    address = _address(request)
    if failures.peek(address) < 1.0:
        raise RateLimited(
            "too many failed sign-ins from this address; retry later",
            retry_after_s=1.0 / failures.limit.rate_per_s,
        )
    try:
        info, token = await anyio.to_thread.run_sync(sessions.login, body.username, body.password)
    except AuthenticationError:
        failures.hit(address)
        raise
    _signed_in(request, info)
    return OrjsonResponse(session_body(info, token))


def principal(request: Request) -> KeyInfo | None:
    """The verified key or session of this request (None with authentication off)."""
    found: KeyInfo | None = request.scope.get(PRINCIPAL_KEY)
    return found


@router.get("/me", summary="Who this key or session is, and what it may do")
async def me(request: Request) -> Response:
    info = principal(request)
    if info is None:
        return OrjsonResponse({"id": None, "user": None, "kind": None, "scopes": []})
    return OrjsonResponse(
        {
            "id": info.id,
            "user": info.user,
            "kind": info.kind,
            "scopes": sorted(s.value for s in info.scopes),
            "expires_at": info.expires_at.isoformat() if info.expires_at else None,
        }
    )


@router.post("/logout", summary="End this session", responses=error_responses(401, 409))
async def logout(request: Request, sessions: SessionsDep) -> Response:
    info = principal(request)
    if info is None or info.kind != "session":
        raise ConflictError(
            "only a session can sign out; revoke an API key with `trajops keys revoke`",
            details=[{"loc": ["header", "Authorization"], "msg": "not a session"}],
        )
    await anyio.to_thread.run_sync(sessions.end, info.id)
    return OrjsonResponse({"ended": info.id})


# --- single sign-on ---------------------------------------------------------------------
def _oidc(request: Request) -> OidcClient:
    client: OidcClient | None = request.app.state.oidc
    if client is None:
        raise NotFoundError(
            "single sign-on is not configured (set TRAJOPS_OIDC_ISSUER and TRAJOPS_OIDC_CLIENT_ID)"
        )
    return client


def _callback_url(request: Request, settings: Settings) -> str:
    return str(settings.oidc_redirect_url or request.url_for("oidc_callback"))


def _post_login_url(settings: Settings) -> str:
    return str(
        settings.oidc_post_login_url
        or f"http://{settings.dashboard_host}:{settings.dashboard_port}/"
    )


@router.get(
    "/oidc/login",
    summary="Start single sign-on: a redirect to the identity provider",
    responses=error_responses(404, 503),
)
async def oidc_login(request: Request, settings: SettingsDep) -> Response:
    client = _oidc(request)
    url, flow = await anyio.to_thread.run_sync(client.begin, _callback_url(request, settings))
    response = RedirectResponse(url, status_code=302)
    response.set_cookie(
        FLOW_COOKIE,
        flow,
        max_age=int(FLOW_TTL_S),
        path="/v1/auth/oidc",
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
    )
    return response


@router.get(
    "/oidc/callback",
    name="oidc_callback",
    summary="The identity provider's answer: a redirect to the dashboard with a login code",
)
async def oidc_callback(
    request: Request,
    settings: SettingsDep,
    sessions: SessionsDep,
    code: Annotated[str | None, Query(max_length=2000)] = None,
    state: Annotated[str | None, Query(max_length=500)] = None,
    error: Annotated[str | None, Query(max_length=500)] = None,
) -> Response:
    client = _oidc(request)
    target = _post_login_url(settings)
    try:
        if error or not code or not state:
            raise AuthenticationError(f"the identity provider answered: {error or 'no code'}")
        identity = await anyio.to_thread.run_sync(
            lambda: client.finish(code=code, state=state, cookie=request.cookies.get(FLOW_COOKIE))
        )
        user = await anyio.to_thread.run_sync(
            lambda: sessions.users.sign_in_external(
                subject=identity.subject, name=identity.name, role=identity.role
            )
        )
        login_code = await anyio.to_thread.run_sync(sessions.handoff, user)
        request.scope[USER_KEY] = user.name
        query = {"login_code": login_code}
    except TrajopsError as exc:  # the browser goes back to the dashboard, which shows it
        query = {"login_error": exc.message[:300]}
    sep = "&" if "?" in target else "?"
    response = RedirectResponse(f"{target}{sep}{urlencode(query)}", status_code=302)
    response.delete_cookie(FLOW_COOKIE, path="/v1/auth/oidc")
    return response


@router.post(
    "/oidc/exchange",
    summary="Redeem a one-time login code for a session token",
    responses=error_responses(401, 422),
)
async def oidc_exchange(body: CodeRequest, request: Request, sessions: SessionsDep) -> Response:
    info, token = await anyio.to_thread.run_sync(sessions.redeem, body.code)
    _signed_in(request, info)
    return OrjsonResponse(session_body(info, token))
