"""Signing in to the dashboard and acting by role, under Streamlit's AppTest, against a real
served app on loopback (real SQLite store and MLflow registry). Every action goes through the
service's API with the person's session."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from streamlit.testing.v1 import AppTest

from tests._support.mlflow_uris import restored_mlflow_uris
from tests._support.registry import MODEL, RegistryInfo, build_registry
from trajops.dashboard.client import ServiceClient
from trajops.dashboard.login import SESSION
from trajops.registry.adapter import Registry
from trajops.security.sessions import Sessions
from trajops.security.users import Users
from trajops.serving import AppOptions, create_app, serve_in_thread
from trajops.settings import Settings
from trajops.store import Store

PASSWORD = "correct horse battery"


@dataclass(frozen=True)
class Site:
    url: str
    registry: RegistryInfo
    settings: Settings


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    root = tmp_path_factory.mktemp("dashboard-login")
    with restored_mlflow_uris(), pytest.MonkeyPatch.context() as env:
        reg = build_registry(root / "registry", versions=2)
        settings = Settings(home=root / "home", tracking_uri=reg.uri)
        settings.ensure_home()
        store = Store(settings.resolved_database_url)
        users = Users(store)
        for name, role in (("vera", "viewer"), ("otto", "operator"), ("ada", "admin")):
            users.create(name=name, role=role, password=PASSWORD)
        store.dispose()
        app = create_app(settings, options=AppOptions(poll=False))
        with serve_in_thread(app) as url:
            for var in ("TRAJOPS_DATABASE_URL", "TRAJOPS_REGISTRY_URI", "MLFLOW_TRACKING_URI"):
                env.delenv(var, raising=False)
            env.delenv("TRAJOPS_DASHBOARD_API_KEY", raising=False)
            env.setenv("TRAJOPS_HOME", str(settings.home))
            env.setenv("TRAJOPS_TRACKING_URI", reg.uri)
            env.setenv("TRAJOPS_DASHBOARD_API_URL", url)
            env.setenv("TRAJOPS_DASHBOARD_REFRESH_S", "0")
            env.setenv("TRAJOPS_DASHBOARD_LOGIN", "true")
            yield Site(url, reg, settings)


def _main() -> None:
    from trajops.dashboard.app import main

    main()


def _page(name: str) -> None:
    from trajops.dashboard.app import run_page

    run_page(name)


def signed_in(site: Site, name: str) -> dict[str, Any]:
    """A session made through the service's sign-in, as the dashboard keeps it."""
    client = ServiceClient(site.url, api_key=None)
    session = client.login(name, PASSWORD)
    return {**session, "client": client.signed_in(session["token"])}


def page_as(site: Site, name: str, page: str) -> AppTest:
    at = AppTest.from_function(_page, args=(page,), default_timeout=90)
    at.session_state[SESSION] = signed_in(site, name)
    return at.run()


def texts(at: AppTest) -> str:
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption]
    parts += [e.value for kind in ("info", "success", "error", "warning") for e in at.get(kind)]
    return "\n".join(str(p) for p in parts)


def test_nobody_sees_a_page_before_signing_in(site: Site) -> None:
    at = AppTest.from_function(_main, default_timeout=90).run()
    assert not at.exception, [e.value for e in at.exception]
    assert [t.label for t in at.text_input] == ["User name", "Password"]
    assert not at.metric and not at.dataframe  # no data leaks onto the sign-in page
    at.text_input(key="login_username").set_value("vera")
    at.text_input(key="login_password").set_value("not the password")
    at.button[0].click().run()
    assert "Sign-in refused: invalid user name or password" in texts(at)
    at.text_input(key="login_password").set_value(PASSWORD)
    at.button[0].click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert "Signed in as **vera** (viewer)" in texts(at)


def test_a_viewer_sees_actions_disabled(site: Site) -> None:
    at = page_as(site, "vera", "models")
    assert "Read-only: vera has no operator role" in texts(at)
    promote = next(b for b in at.button if b.label == "Promote")
    assert promote.disabled
    people = page_as(site, "vera", "people")
    assert "Only admins manage people and keys." in texts(people)


def test_an_operator_promotes_and_the_registry_shows_it(site: Site) -> None:
    at = page_as(site, "otto", "models")
    at.selectbox(key="promote_version").set_value("2")
    at.text_input(key="promote_reason").set_value("dashboard test")
    at.checkbox(key="promote_force").check()
    next(b for b in at.button if b.label == "Promote").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert "promotion of v2 to champion: done" in texts(at)
    shown = {m.label: m.value for m in at.metric}
    assert shown["champion"] == "v2"  # the page re-read the registry after acting
    registry = Registry(site.registry.client, MODEL)
    assert registry.aliases()["champion"] == 2
    from trajops.registry.history import read_history

    event = read_history(registry, "champion")[-1]
    assert event.actor == "user:otto" and event.reason == "dashboard test"
    next(b for b in at.button if b.label == "Roll back").click().run()
    assert registry.aliases()["champion"] == 1


def test_an_admin_creates_a_user_who_can_then_sign_in(site: Site) -> None:
    at = page_as(site, "ada", "people")
    at.text_input(key="new_user_name").set_value("nora")
    at.selectbox(key="new_user_role").set_value("operator")
    next(b for b in at.button if b.label == "Create user").click().run()
    assert not at.exception, [e.value for e in at.exception]
    (password,) = [c.value for c in at.code]
    session = ServiceClient(site.url, api_key=None).login("nora", password)
    assert session["user"] == "nora" and "operate" in session["scopes"]


def test_a_single_sign_on_code_in_the_url_signs_in(site: Site) -> None:
    store = Store(site.settings.resolved_database_url, run_migrations=False)
    try:
        users = Users(store)
        from trajops.security.keys import load_or_create_pepper

        sessions = Sessions(users, pepper=load_or_create_pepper(site.settings), ttl_s=600)
        code = sessions.handoff(users.get("otto"))
    finally:
        store.dispose()
    at = AppTest.from_function(_main, default_timeout=90)
    at.query_params["login_code"] = code
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert "Signed in as **otto**" in texts(at)
    assert "login_code" not in at.query_params  # taken out of the address bar
    again = AppTest.from_function(_main, default_timeout=90)
    again.query_params["login_code"] = code
    again.run()
    assert "Single sign-on failed: the login code was used already" in texts(again)


def test_signing_out_ends_the_session_at_the_service(site: Site) -> None:
    session = signed_in(site, "vera")
    at = AppTest.from_function(_page, args=("overview",), default_timeout=90)
    at.session_state[SESSION] = session
    at.run()
    at2 = AppTest.from_function(_main, default_timeout=90)
    at2.session_state[SESSION] = session
    at2.run()
    next(b for b in at2.button if b.label == "Sign out").click().run()
    assert [t.label for t in at2.text_input] == ["User name", "Password"]
    r = httpx.get(f"{site.url}/v1/auth/me", headers={"X-API-Key": session["token"]})
    assert r.status_code == 401


def test_a_login_error_in_the_url_is_shown_as_plain_text(site: Site) -> None:
    at = AppTest.from_function(_main, default_timeout=90)
    at.query_params["login_error"] = "[call us](http://phish.example) now"
    at.run()
    (error,) = [e.value for e in at.error]
    assert error == r"Single sign-on failed: \[call us\]\(http://phish\.example\) now"
    assert "login_error" not in at.query_params
