"""Every route of the app, enumerated from ``app.routes``, against every kind of bad API key.

Public: ``/healthz``, ``/readyz``, ``/docs`` (with its local assets) and ``/openapi.json``, and
``/metrics`` only when ``metrics_public`` is set. Every
other route must answer 401 (with ``WWW-Authenticate``) to a missing, malformed, unknown,
revoked or expired key, 403 to a key without the scope, and let the right key through.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text

from tests._support.api_keys import issue_key
from tests._support.app_fixtures import make_settings
from tests._support.registry import RegistryInfo
from trajops.security.keys import ApiKeys
from trajops.security.policy import Access, Scope, allows, required_access
from trajops.serving import AppOptions, create_app, serve_in_thread
from trajops.store import Store

UNKNOWN = "tjo_000000000000_" + "A" * 43  # well formed, never issued
PUBLIC_ALWAYS = {
    "/healthz",
    "/readyz",
    "/docs",
    "/openapi.json",
    "/v1/auth/login",
    "/v1/auth/oidc/login",
    "/v1/auth/oidc/callback",
    "/v1/auth/oidc/exchange",
}


@dataclass(frozen=True)
class Keys:
    admin: str
    predict: str
    feedback: str
    revoked: str
    expired: str
    pin: str
    read: str
    operate: str

    def by_scope(self) -> dict[Scope, str]:
        return {
            Scope.PREDICT: self.predict,
            Scope.FEEDBACK: self.feedback,
            Scope.READ: self.read,
            Scope.OPERATE: self.operate,
            Scope.PIN: self.pin,
            Scope.ADMIN: self.admin,
        }


@dataclass(frozen=True)
class Served:
    app: FastAPI
    http: httpx.Client
    keys: Keys


@pytest.fixture(scope="module")
def served(registry: RegistryInfo, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    settings = make_settings(
        registry,
        tmp_path_factory.mktemp("auth-home"),
        rate_limit_burst=10_000,
        auth_failure_burst=10_000,  # this module sends every kind of bad key on purpose
    )
    _, admin = issue_key(settings, scopes="admin")
    _, predict = issue_key(settings, scopes="predict")
    _, feedback = issue_key(settings, scopes="feedback")
    _, pin = issue_key(settings, scopes="predict,pin")
    _, read = issue_key(settings, scopes="read")
    _, operate = issue_key(settings, scopes="operate")
    revoked_id, revoked = issue_key(settings, scopes="admin")
    _, expired = issue_key(
        settings, scopes="admin", expires_at=datetime.now(UTC) - timedelta(minutes=1)
    )
    store = Store(settings.resolved_database_url)
    ApiKeys.from_settings(settings, store).revoke_key(revoked_id)
    store.dispose()
    app = create_app(settings, options=AppOptions(poll=False))
    with serve_in_thread(app) as url, httpx.Client(base_url=url, timeout=30) as http:
        yield Served(
            app, http, Keys(admin, predict, feedback, revoked, expired, pin, read, operate)
        )


def endpoints(app: FastAPI) -> list[tuple[str, str, str]]:
    """``(method, path template, concrete path)`` of every route the app serves."""
    out = []
    for route in app.routes:
        template = getattr(route, "path_format", None)
        methods = getattr(route, "methods", None)
        if template is None or not methods:
            continue
        concrete = re.sub(r"\{[^}]+\}", "1", template)
        out.extend((m, template, concrete) for m in sorted(methods) if m != "HEAD")
    return out


def call(http: httpx.Client, method: str, path: str, key: str | None) -> httpx.Response:
    headers = {"X-API-Key": key} if key is not None else {}
    return http.request(method, path, headers=headers)


def wrong_key(keys: Keys, access: Access) -> str | None:
    """A valid key that does not meet ``access`` (None: every key does)."""
    for scope, key in keys.by_scope().items():
        if scope not in (Scope.ADMIN, Scope.PIN) and not allows({scope}, access):
            return key
    return None


def right_key(keys: Keys, access: Access) -> str:
    """The key with the least scope that meets ``access``."""
    return keys.by_scope()[access.scopes[0]] if access.scopes else keys.predict


def assert_refused(r: httpx.Response, status: int, code: str, where: str) -> None:
    assert r.status_code == status, f"{where}: {r.status_code} {r.text}"
    err = r.json()["error"]
    assert err["code"] == code and err["message"], where
    if status == 401:
        assert "X-API-Key" in r.headers["www-authenticate"], where


def test_enumeration_covers_the_surface(served: Served) -> None:
    paths = {p for _, p, _ in endpoints(served.app)}
    expected = {
        "/v1/predict",
        "/v1/feedback",
        "/v1/models",
        "/v1/models/reload",
        "/v1/models/default",
        "/v1/monitoring/performance",
        "/v1/monitoring/drift",
        "/v1/monitoring/drift/run",
        "/v1/monitoring/drift/{report_id}/report",
        "/v1/monitoring/alerts",
        "/healthz",
        "/readyz",
        "/metrics",
        "/docs",
        "/openapi.json",
    }
    assert expected <= paths, expected - paths


def test_every_non_public_route_rejects_bad_keys(served: Served) -> None:
    http, keys = served.http, served.keys
    checked = 0
    for method, template, path in endpoints(served.app):
        access = required_access(method, template, metrics_public=False)
        where = f"{method} {template}"
        if template in PUBLIC_ALWAYS:
            assert access.public, where
            assert call(http, method, path, None).status_code not in (401, 403), where
            continue
        assert not access.public, f"{where} must not be public"
        assert_refused(call(http, method, path, None), 401, "unauthenticated", where)
        assert_refused(call(http, method, path, "not-a-key"), 401, "unauthenticated", where)
        assert_refused(call(http, method, path, UNKNOWN), 401, "unauthenticated", where)
        revoked = call(http, method, path, keys.revoked)
        assert_refused(revoked, 401, "unauthenticated", where)
        assert "revoked" in revoked.json()["error"]["message"]
        expired = call(http, method, path, keys.expired)
        assert_refused(expired, 401, "unauthenticated", where)
        assert "expired" in expired.json()["error"]["message"]
        wrong = wrong_key(keys, access)
        if access.scopes:
            assert wrong is not None, where
            assert_refused(call(http, method, path, wrong), 403, "permission_denied", where)
        allowed = call(http, method, path, right_key(keys, access))
        assert allowed.status_code not in (401, 403, 429), f"{where}: {allowed.text}"
        checked += 1
    assert checked >= 12


def _predict(served: Served, key: str, model: str) -> httpx.Response:
    body = {
        "model": model,
        "agents": [{"agent_id": "a", "positions": [[0.5 * i, 0.0] for i in range(8)]}],
    }
    return served.http.post("/v1/predict", json=body, headers={"X-API-Key": key})


def test_a_predict_key_reaches_only_exposed_models(served: Served) -> None:
    """``predict`` alone names the exposed aliases; any version needs ``pin``, and a version
    it may not reach is refused before anything is loaded (so also an unknown one)."""
    keys = served.keys
    assert _predict(served, keys.predict, "champion").json()["model"]["version"] == "1"
    assert _predict(served, keys.predict, "challenger").status_code == 200
    for model in ("1", "2", "v2", "02", "99", "staging"):
        refused = _predict(served, keys.predict, model)
        assert_refused(refused, 403, "permission_denied", model)
        assert "pin" in refused.json()["error"]["message"]
    loaded = {
        v["version"]
        for v in served.http.get("/v1/models", headers={"X-API-Key": keys.admin}).json()["versions"]
    }
    assert "99" not in loaded


def test_versions_have_one_spelling(served: Served) -> None:
    keys = served.keys
    for spelling in ("2", "02", "v2", "V002"):
        r = _predict(served, keys.pin, spelling)
        assert r.status_code == 200, r.text
        assert r.json()["model"]["version"] == "2"
    assert _predict(served, keys.admin, "v1").json()["model"]["version"] == "1"
    for unknown in ("7", "99999999999999999999"):
        assert_refused(_predict(served, keys.pin, unknown), 404, "model_not_found", unknown)
    versions = [
        v["version"]
        for v in served.http.get("/v1/models", headers={"X-API-Key": keys.admin}).json()["versions"]
    ]
    assert sorted(versions) == sorted(set(versions))  # "02" and "2" are one loaded version


def test_a_flood_of_bad_keys_is_throttled_per_address(
    registry: RegistryInfo, tmp_path: Path
) -> None:
    """Past its budget of failed attempts an address gets 429 (no store lookup), while a key
    it verified before keeps working; the audit trail gets one row per address and window."""
    settings = make_settings(registry, tmp_path, auth_failure_burst=5, auth_failure_rate_per_s=0.2)
    _, admin = issue_key(settings, scopes="admin")
    app = create_app(settings, options=AppOptions(poll=False))
    with serve_in_thread(app) as url, httpx.Client(base_url=url, timeout=30) as http:
        assert http.get("/v1/models", headers={"X-API-Key": admin}).status_code == 200
        statuses = [
            http.get("/v1/models", headers={"X-API-Key": f"tjo_{i:012d}_" + "B" * 43}).status_code
            for i in range(30)
        ]
        assert statuses[:5] == [401] * 5 and set(statuses[5:]) == {429}
        throttled = http.get("/v1/models")
        assert throttled.status_code == 429 and int(throttled.headers["retry-after"]) >= 1
        assert http.get("/v1/models", headers={"X-API-Key": admin}).status_code == 200
        assert http.get("/healthz").status_code == 200
    store = Store(settings.resolved_database_url)
    with store.session() as s:
        events = [
            (e, d) for e, d in s.execute(text("select event, details from audit_log order by id"))
        ]
    store.dispose()
    failures = [d for e, d in events if e == "auth.failures"]
    assert len(failures) == 1 and json.loads(failures[0])["count"] == 31
    assert len(events) < 10  # the flood did not become one row per request


def test_docs_work_in_a_browser_without_a_key_or_the_internet(served: Served) -> None:
    page = served.http.get("/docs")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    sources = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert sources and all(s.startswith("/docs/assets/") for s in sources), sources
    for source in sources:
        assert served.http.get(source).status_code == 200, source
    spec = served.http.get("/openapi.json").json()
    assert {"ApiKeyHeader", "BearerKey"} <= set(spec["components"]["securitySchemes"])
    assert served.http.get("/redoc").status_code == 401  # ReDoc needs a CDN: not served


def test_bearer_header_and_unmatched_paths(served: Served) -> None:
    http, keys = served.http, served.keys
    bearer = {"Authorization": f"Bearer {keys.predict}"}
    assert http.get("/v1/models", headers=bearer).status_code == 200
    assert http.get("/v1/models", headers={"Authorization": "Basic x"}).status_code == 401
    # Unknown paths are deny-by-default (admin): no route discovery without a key.
    assert_refused(http.get("/v1/nothing-here"), 401, "unauthenticated", "unmatched")
    assert http.get("/v1/nothing-here", headers={"X-API-Key": keys.admin}).status_code == 404


def test_metrics_public_only_when_configured_and_rate_limit(
    registry: RegistryInfo, tmp_path_factory: pytest.TempPathFactory
) -> None:
    settings = make_settings(
        registry,
        tmp_path_factory.mktemp("public-metrics"),
        metrics_public=True,
        rate_limit_per_s=0.5,
        rate_limit_burst=2,
    )
    key_id, token = issue_key(settings, scopes="predict")
    app = create_app(settings, options=AppOptions(poll=False))
    with serve_in_thread(app) as url, httpx.Client(base_url=url) as http:
        assert http.get("/metrics").status_code == 200, "public when configured"
        assert http.get("/v1/models").status_code == 401, "everything else still needs a key"
        headers = {"X-API-Key": token}
        assert [http.get("/v1/models", headers=headers).status_code for _ in range(2)] == [
            200,
            200,
        ]
        limited = http.get("/v1/models", headers=headers)
        assert_refused(limited, 429, "rate_limited", "third request of a burst of 2")
        assert int(limited.headers["retry-after"]) >= 1
        assert key_id in limited.json()["error"]["message"]
        text = http.get("/metrics").text
    assert 'trajops_auth_failures_total{reason="rate_limited"} 1.0' in text
    assert 'trajops_auth_failures_total{reason="missing"} 1.0' in text


def test_verified_key_survives_a_store_outage(
    registry: RegistryInfo, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """With the key cache off every request asks the store; when the store goes away a key
    verified before keeps working (grace), an unverified one gets 503, never a 500."""
    settings = make_settings(registry, tmp_path_factory.mktemp("outage"), api_key_cache_s=0)
    _, token = issue_key(settings, scopes="predict")
    _, never_used = issue_key(settings, scopes="predict")
    app = create_app(settings, options=AppOptions(poll=False))
    with serve_in_thread(app) as url, httpx.Client(base_url=url) as http:
        assert http.get("/v1/models", headers={"X-API-Key": token}).status_code == 200
        db = Path(settings.resolved_database_url.removeprefix("sqlite:///"))
        db.rename(db.with_suffix(".gone"))  # the store loses its tables...
        app.state.monitor.store.engine.dispose()  # ...and its pooled connections
        assert http.get("/v1/models", headers={"X-API-Key": token}).status_code == 200
        down = http.get("/v1/models", headers={"X-API-Key": never_used})
        assert_refused(down, 503, "service_unavailable", "unverifiable key")
        assert down.headers["retry-after"] == "5"
    graced = app.state.metrics.registry.get_sample_value(
        "trajops_auth_failures_total", {"reason": "store_down_grace"}
    )
    assert graced == 1.0
