"""People over HTTP on a real server: sign-in, roles, sessions ending, user and key management,
alias moves through the API naming the person, and the sign-in throttle."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from sqlalchemy import select

from tests._support.api_keys import issue_key
from tests._support.app_fixtures import make_settings
from tests._support.registry import MODEL, RegistryInfo, build_registry
from trajops.registry.adapter import Registry
from trajops.registry.history import read_history
from trajops.security.users import Users
from trajops.serving import AppOptions, create_app, serve_in_thread
from trajops.store import Store
from trajops.store.models import AuditEntry

PASSWORD = "correct horse battery"


@dataclass(frozen=True)
class Site:
    http: httpx.Client
    admin_key: str
    database_url: str
    registry: RegistryInfo


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    registry = build_registry(tmp_path_factory.mktemp("people-registry"), versions=2)
    settings = make_settings(
        registry,
        tmp_path_factory.mktemp("people-home"),
        auth_failure_burst=8,
        auth_failure_rate_per_s=0.01,  # no refill within the module
    )
    _, admin_key = issue_key(settings, scopes="admin")
    store = Store(settings.resolved_database_url)
    users = Users(store)
    users.create(name="vera", role="viewer", password=PASSWORD)
    users.create(name="otto", role="operator", password=PASSWORD)
    store.dispose()
    app = create_app(settings, options=AppOptions(poll=False))
    with serve_in_thread(app) as url, httpx.Client(base_url=url, timeout=60) as http:
        yield Site(http, admin_key, settings.resolved_database_url, registry)


def login(site: Site, name: str, password: str = PASSWORD) -> httpx.Response:
    return site.http.post("/v1/auth/login", json={"username": name, "password": password})


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_a_viewer_reads_and_is_refused_actions(site: Site) -> None:
    r = login(site, "vera")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["user"] == "vera" and body["scopes"] == ["read"] and body["expires_at"]
    me = site.http.get("/v1/auth/me", headers=bearer(body["token"])).json()
    assert me["user"] == "vera" and me["kind"] == "session"
    for path in ("/v1/models", "/v1/experiments", "/v1/monitoring/alerts", "/metrics"):
        assert site.http.get(path, headers=bearer(body["token"])).status_code == 200, path
    refused = site.http.post(
        "/v1/models/2/promote", json={"force": True}, headers=bearer(body["token"])
    )
    assert refused.status_code == 403
    assert "session of vera lacks the operate scope" in refused.json()["error"]["message"]
    assert site.http.get("/v1/users", headers=bearer(body["token"])).status_code == 403
    predict = {"agents": [{"agent_id": "a", "positions": [[0.1 * i, 0.0] for i in range(8)]}]}
    assert (
        site.http.post("/v1/predict", json=predict, headers=bearer(body["token"])).status_code
        == 403
    )


def test_an_operator_promotes_and_rolls_back_and_history_names_them(site: Site) -> None:
    token = login(site, "otto").json()["token"]
    r = site.http.post(
        "/v1/models/v2/promote",
        json={"alias": "champion", "reason": "better on the new site"},
        headers=bearer(token),
    )
    assert r.status_code in (200, 409), r.text  # the gate decides; both are answers
    if r.status_code == 409:
        assert "--force" in r.json()["error"]["message"] or r.json()["error"]["details"]
        r = site.http.post("/v1/models/2/promote", json={"force": True}, headers=bearer(token))
    assert r.status_code == 200, r.text
    assert r.json()["version"] == 2 and r.json()["previous"] == 1
    registry = Registry(site.registry.client, MODEL)
    assert registry.aliases()["champion"] == 2
    assert read_history(registry, "champion")[-1].actor == "user:otto"
    # This process re-read its aliases at once.
    aliases = site.http.get("/v1/models", headers=bearer(token)).json()["aliases"]
    assert str(aliases["champion"]) == "2"
    back = site.http.post("/v1/models/rollback", json={}, headers=bearer(token))
    assert back.status_code == 200 and back.json()["version"] == 1
    assert registry.aliases()["champion"] == 1
    # The audit trail names the person and the version moved (written by the log consumer).
    rows = _audit_rows(site, "/v1/models/{version}/promote")
    assert rows and all(r.details.get("user") == "otto" for r in rows)
    assert {r.details.get("path") for r in rows} <= {
        "/v1/models/v2/promote",
        "/v1/models/2/promote",
    }


def _audit_rows(site: Site, route: str, timeout_s: float = 20.0) -> list[AuditEntry]:
    store = Store(site.database_url, run_migrations=False)
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            with store.session() as s:
                rows = list(s.scalars(select(AuditEntry).where(AuditEntry.route == route)))
            if rows or time.monotonic() > deadline:
                return rows
            time.sleep(0.2)
    finally:
        store.dispose()


def test_an_admin_manages_people_and_keys(site: Site) -> None:
    admin = {"X-API-Key": site.admin_key}
    created = site.http.post("/v1/users", json={"name": "nina", "role": "operator"}, headers=admin)
    assert created.status_code == 201, created.text
    password = created.json()["password"]
    token = login(site, "nina", password).json()["token"]
    key = site.http.post(
        "/v1/keys", json={"name": "nina-ci", "scopes": ["predict"], "owner": "nina"}, headers=admin
    )
    assert key.status_code == 201 and key.json()["owner"] == "nina"
    too_much = site.http.post(
        "/v1/keys", json={"name": "x", "scopes": ["admin"], "owner": "nina"}, headers=admin
    )
    assert too_much.status_code == 422 and "cannot own" in too_much.json()["error"]["message"]
    names = [u["name"] for u in site.http.get("/v1/users", headers=admin).json()]
    assert {"vera", "otto", "nina"} <= set(names)
    assert site.http.post("/v1/users/nina/disable", headers=admin).status_code == 200
    # At once in this process: the session and the owned key stop working.
    assert site.http.get("/v1/auth/me", headers=bearer(token)).status_code == 401
    assert (
        site.http.get("/v1/models", headers={"X-API-Key": key.json()["token"]}).status_code == 401
    )
    assert site.http.post("/v1/users/ghost/disable", headers=admin).status_code == 404
    bad = site.http.post("/v1/users", json={"name": "Bad Name", "role": "viewer"}, headers=admin)
    assert bad.status_code == 422 and "invalid user name" in bad.json()["error"]["message"]


def test_no_digest_of_a_password_is_kept_in_the_audit_trail(site: Site) -> None:
    assert login(site, "vera").status_code == 200
    rows = _audit_rows(site, "/v1/auth/login")
    assert rows and all(r.payload_digest is None for r in rows)
    assert any(r.details.get("user") == "vera" and r.status == 200 for r in rows)
    created = _audit_rows(site, "/v1/users")
    assert all(r.payload_digest is None for r in created if r.method == "POST")


def test_sign_out_ends_the_session(site: Site) -> None:
    token = login(site, "vera").json()["token"]
    assert site.http.post("/v1/auth/logout", headers=bearer(token)).status_code == 200
    r = site.http.get("/v1/auth/me", headers=bearer(token))
    assert r.status_code == 401 and "ended" in r.json()["error"]["message"]
    key_logout = site.http.post("/v1/auth/logout", headers={"X-API-Key": site.admin_key})
    assert key_logout.status_code == 409


def test_failed_sign_ins_are_throttled_per_address(site: Site) -> None:
    """The budget is 8 failures (auth_failure_burst; earlier refusals in this module spent
    some): then 429 with Retry-After, even for the right password, until the bucket refills."""
    statuses = [login(site, "vera", "wrong password!").status_code for _ in range(10)]
    assert set(statuses) <= {401, 429} and statuses[-2:] == [429, 429], statuses
    first = statuses.index(429)
    assert all(s == 429 for s in statuses[first:]), statuses  # no password tried once throttled
    refused = login(site, "vera")
    assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1
