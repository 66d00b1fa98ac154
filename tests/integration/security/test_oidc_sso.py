"""Single sign-on against a real OpenID Connect provider (``oidc-provider-mock``, run in a thread):
the authorization code flow with PKCE, ID tokens checked against the provider's keys, groups
mapped to roles, and the one-time login code the dashboard redeems."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import httpx
import oidc_provider_mock
import pytest

from tests._support.app_fixtures import _isolated_mlflow_uris, make_settings, registry
from tests._support.registry import RegistryInfo
from trajops.serving import AppOptions, create_app, serve_in_thread
from trajops.settings import Settings

__all__ = ["_isolated_mlflow_uris", "registry"]  # fixtures used here
DASHBOARD = "http://dashboard.test/"
PEOPLE = [
    oidc_provider_mock.User(sub="sub-carol", claims={"preferred_username": "carol", "groups": ["ops"]}),
    oidc_provider_mock.User(sub="sub-adam", claims={"email": "adam@example.org", "groups": ["ops", "admins"]}),
    oidc_provider_mock.User(sub="sub-eve", claims={"preferred_username": "eve", "groups": ["guests"]}),
]  # fmt: skip


@dataclass(frozen=True)
class Sso:
    http: httpx.Client
    settings: Settings


@pytest.fixture(scope="module")
def sso(registry: RegistryInfo, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sso]:
    with oidc_provider_mock.run_server_in_thread(user_claims=PEOPLE) as provider:
        settings = make_settings(
            registry,
            tmp_path_factory.mktemp("sso-home"),
            oidc_issuer=f"http://localhost:{provider.server_port}",
            oidc_client_id="trajops-dashboard",
            oidc_client_secret="client-secret",
            oidc_role_map="ops=operator,admins=admin",
            oidc_post_login_url=DASHBOARD,
        )
        app = create_app(settings, options=AppOptions(poll=False))
        with (
            serve_in_thread(app) as url,
            httpx.Client(base_url=url, timeout=30, follow_redirects=False) as http,
        ):
            yield Sso(http, settings)


def sign_in(sso: Sso, subject: str, *, tamper_state: bool = False) -> dict[str, list[str]]:
    """Walk the browser's part of the flow; returns the query the dashboard receives."""
    start = sso.http.get("/v1/auth/oidc/login")
    assert start.status_code == 302, start.text
    authorize = start.headers["location"]
    assert "code_challenge_method=S256" in authorize and "nonce=" in authorize
    form = httpx.get(authorize)
    assert form.status_code == 200 and subject in form.text  # the provider's consent page
    granted = httpx.post(authorize, data={"sub": subject})
    assert granted.status_code == 302, granted.text
    callback = urlsplit(granted.headers["location"])
    query = callback.query
    if tamper_state:
        query = re.sub(r"state=[^&]+", "state=forged", query)
    done = sso.http.get(f"{callback.path}?{query}")  # the flow cookie rides along
    assert done.status_code == 302
    target = done.headers["location"]
    assert target.startswith(DASHBOARD)
    return parse_qs(urlsplit(target).query)


def test_a_group_maps_to_a_role_and_the_code_becomes_a_session(sso: Sso) -> None:
    query = sign_in(sso, "sub-carol")
    (code,) = query["login_code"]
    session = sso.http.post("/v1/auth/oidc/exchange", json={"code": code})
    assert session.status_code == 200, session.text
    body = session.json()
    assert body["user"] == "carol" and body["scopes"] == ["operate", "read"]
    me = sso.http.get("/v1/auth/me", headers={"Authorization": f"Bearer {body['token']}"})
    assert me.json()["user"] == "carol" and me.json()["kind"] == "session"
    again = sso.http.post("/v1/auth/oidc/exchange", json={"code": code})
    assert again.status_code == 401 and "used already" in again.json()["error"]["message"]


def test_the_highest_mapped_role_wins_and_email_names_the_user(sso: Sso) -> None:
    (code,) = sign_in(sso, "sub-adam")["login_code"]
    body = sso.http.post("/v1/auth/oidc/exchange", json={"code": code}).json()
    assert body["user"] == "adam@example.org" and body["scopes"] == ["admin"]
    users = sso.http.get("/v1/users", headers={"Authorization": f"Bearer {body['token']}"})
    carol = next(u for u in users.json() if u["name"] == "carol")
    assert carol["source"] == "oidc" and carol["role"] == "operator"


def test_no_mapped_group_is_refused_with_a_reason(sso: Sso) -> None:
    query = sign_in(sso, "sub-eve")
    assert "login_code" not in query
    assert "grant no trajops role" in query["login_error"][0]


def test_a_forged_state_is_refused(sso: Sso) -> None:
    query = sign_in(sso, "sub-carol", tamper_state=True)
    assert "login_code" not in query and "state does not match" in query["login_error"][0]


def test_a_callback_without_the_flow_cookie_is_refused(sso: Sso) -> None:
    stranger = httpx.get(str(sso.http.base_url.join("/v1/auth/oidc/callback?code=x&state=y")))
    target = parse_qs(urlsplit(stranger.headers["location"]).query)
    assert "no sign-in in progress" in target["login_error"][0]


def test_unconfigured_single_sign_on_is_a_clear_404(
    registry: RegistryInfo, tmp_path_factory: pytest.TempPathFactory
) -> None:
    settings = make_settings(registry, tmp_path_factory.mktemp("no-sso"))
    app = create_app(settings, options=AppOptions(poll=False))
    with serve_in_thread(app) as url:
        r = httpx.get(f"{url}/v1/auth/oidc/login")
    assert r.status_code == 404 and "TRAJOPS_OIDC_ISSUER" in r.json()["error"]["message"]
