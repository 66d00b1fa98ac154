"""The dashboard as people see it: ``trajops serve`` and ``trajops dashboard`` as real
processes on loopback, traffic with ground truth through an A/B experiment, then headless
Chromium signing in (an operator, a viewer), every page until the service's own numbers
appear, a promotion from the Models page that the registry then shows, and a viewer's
disabled controls. Screenshots of every page go to ``build/test-artifacts/``."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import oidc_provider_mock
import pytest

from tests._support.api_keys import issue_key
from tests._support.browser import browser
from tests._support.mlflow_uris import restored_mlflow_uris
from tests._support.nginx import stop, wait_http
from tests._support.services import free_port
from tests.unit.dashboard._scenario import OFFLINE, Traffic, dashboard_registry, send_traffic
from trajops.security.users import Users
from trajops.settings import Settings
from trajops.store import Store

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
__all__ = ["browser"]  # the fixture, used by name

ARTIFACTS = Path(__file__).resolve().parents[2] / "build" / "test-artifacts"
TRAJOPS = str(Path(sys.executable).with_name("trajops"))
PASSWORD = "correct horse battery"
SSO_PEOPLE = [
    oidc_provider_mock.User(
        sub="sso-sofia", claims={"preferred_username": "sofia", "groups": ["ops"]}
    )
]
PAGES = (
    ("Overview", "trajops operations"),
    ("Models", "Alias history"),
    ("Traffic", "Traffic"),
    ("Online accuracy", "Online accuracy"),
    ("A/B experiments", "Arms"),
    ("Drift", "Evidently report"),
    ("Alerts", "Alerts"),
    ("Trajectories", "Trajectories"),
)  # sidebar link -> a text its page shows


def _start(args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [TRAJOPS, *args], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Traffic, str]]:
    """A served model with traffic, and the dashboard on it (sign-in on); yields the
    dashboard URL, the traffic and the tracking URI."""
    root = tmp_path_factory.mktemp("dashboard-e2e")
    with restored_mlflow_uris():
        reg, windows = dashboard_registry(root / "registry")
    home = root / "home"
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("TRAJOPS_", "MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI"))
    }
    env = {
        **clean,
        "TRAJOPS_HOME": str(home),
        "TRAJOPS_TRACKING_URI": reg.uri,
        "TRAJOPS_LOG_FLUSH_INTERVAL_S": "0.05",
        "TRAJOPS_DRIFT_MIN_INPUTS": "10",
        "TRAJOPS_EXPERIMENT_INTERVAL_S": "0",
        "TRAJOPS_ALERT_INTERVAL_S": "0.5",
        "TRAJOPS_ALERT_MIN_FEEDBACK": "1",
    }
    provider = oidc_provider_mock.run_server_in_thread(user_claims=SSO_PEOPLE)
    idp = provider.__enter__()
    api_port, ui_port = free_port(), free_port()
    env.update(  # single sign-on, for the service and the dashboard alike
        {
            "TRAJOPS_OIDC_ISSUER": f"http://localhost:{idp.server_port}",
            "TRAJOPS_OIDC_CLIENT_ID": "trajops-dashboard",
            "TRAJOPS_OIDC_CLIENT_SECRET": "client-secret",
            "TRAJOPS_OIDC_ROLE_MAP": "ops=operator",
            "TRAJOPS_OIDC_POST_LOGIN_URL": f"http://127.0.0.1:{ui_port}/",
        }
    )
    settings = Settings(home=home, tracking_uri=reg.uri)
    _, token = issue_key(settings, scopes="admin")
    store = Store(settings.resolved_database_url)
    for name, role in (("olga", "operator"), ("vic", "viewer"), ("ada", "admin")):
        Users(store).create(name=name, role=role, password=PASSWORD)
    store.dispose()
    api = f"http://127.0.0.1:{api_port}"
    server = _start(["serve", "--port", str(api_port)], env)
    dashboard = None
    try:
        wait_http(f"{api}/readyz", server)
        with httpx.Client(base_url=api, timeout=60, headers={"X-API-Key": token}) as http:
            traffic = send_traffic(http, windows, n_requests=20)
        dashboard = _start(  # no key: every person acts with their own session
            ["dashboard", "--port", str(ui_port), "--api-url", api, "--refresh", "0"], env
        )
        ui = f"http://127.0.0.1:{ui_port}"
        wait_http(f"{ui}/_stcore/health", dashboard)
        yield ui, traffic, reg.uri
    finally:
        provider.__exit__(None, None, None)
        if dashboard is not None:
            stop(dashboard)
        stop(server)


def _wait_for_texts(driver: object, texts: list[str], timeout_s: float = 90.0) -> str:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    def shown(d: object) -> str | bool:
        body: str = d.find_element(By.TAG_NAME, "body").text  # type: ignore[attr-defined]
        return body if all(t in body for t in texts) else False

    try:
        found: str = WebDriverWait(driver, timeout_s, poll_frequency=0.5).until(shown)
    except Exception:
        body = driver.find_element(By.TAG_NAME, "body").text  # type: ignore[attr-defined]
        missing = [t for t in texts if t not in body]
        raise AssertionError(f"never shown: {missing}; page text:\n{body[:3000]}") from None
    return found


def _screenshot(driver: object, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / name
    assert driver.save_screenshot(str(path))  # type: ignore[attr-defined]
    print(f"screenshot: {path}")
    return path


def _sign_in(driver: object, url: str, name: str) -> None:
    """The sign-in form, as a person fills it."""
    from selenium.webdriver.common.by import By

    driver.get(url)  # type: ignore[attr-defined]
    _wait_for_texts(driver, ["Sign in", "User name"])
    find = driver.find_element  # type: ignore[attr-defined]
    find(By.CSS_SELECTOR, 'input[aria-label="User name"]').send_keys(name)
    find(By.CSS_SELECTOR, 'input[aria-label="Password"]').send_keys(PASSWORD)
    _click(driver, "Sign in")
    _wait_for_texts(driver, [f"Signed in as {name}"])


def _click(driver: object, label: str) -> None:
    from selenium.webdriver.common.by import By

    xpath = f'//button[normalize-space(.)="{label}"]'
    driver.find_element(By.XPATH, xpath).click()  # type: ignore[attr-defined]


def _button(driver: object, label: str) -> object:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.XPATH, f'//button[normalize-space(.)="{label}"]')  # type: ignore[attr-defined]


def _open(driver: object, link: str, shows: str) -> str:
    """Follow a sidebar link (the session stays: no page load) and wait for its page."""
    from selenium.webdriver.common.by import By

    nav = driver.find_element(By.CSS_SELECTOR, '[data-testid="stSidebarNav"]')  # type: ignore[attr-defined]
    nav.find_element(By.XPATH, f'.//a[.//span[normalize-space(.)="{link}"]]').click()
    return _wait_for_texts(driver, [shows])


def test_sign_in_then_every_page_shows_the_services_numbers(
    stack: tuple[str, Traffic, str], browser: object
) -> None:
    url, traffic, _ = stack
    browser.get(url)  # type: ignore[attr-defined]
    body = _wait_for_texts(browser, ["Sign in", "User name", "Password"])
    assert "champion" not in body  # nothing shows before signing in
    _screenshot(browser, "dashboard-sign-in.png")
    _sign_in(browser, url, "olga")
    expected = traffic.ade_by_version_variant()
    online = [f"{ade:.3f} m" for ade in expected.values()]
    body = _wait_for_texts(
        browser,
        [
            "trajops operations",
            "champion",
            "v1",
            f"offline ADE {OFFLINE['1'][0]:.3f} m",
            "cv-v1-vs-v2 (running)",
            f"run {traffic.drift_report_id} (20 inputs)",
            *online,
        ],
    )
    assert "unreachable" not in body and "refused" not in body
    path = _screenshot(browser, "dashboard.png")
    assert path.stat().st_size > 10_000
    for link, shows in PAGES[1:]:
        body = _open(browser, link, shows)
        assert "refused" not in body, link
        _screenshot(browser, f"dashboard-{link.lower().replace(' ', '-').replace('/', '')}.png")

    # The trajectory viewer draws recent requests in the browser too.
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    _wait_for_texts(browser, ["Trajectories", "0.500 m"])

    def drawn(d: object) -> bool:
        images = d.find_elements(By.CSS_SELECTOR, "img")  # type: ignore[attr-defined]
        return any(int(img.get_attribute("naturalWidth") or 0) > 300 for img in images)

    WebDriverWait(browser, 60, poll_frequency=0.5).until(drawn)
    _screenshot(browser, "dashboard-trajectories.png")


def test_an_operator_promotes_from_the_models_page(
    stack: tuple[str, Traffic, str], browser: object
) -> None:
    from mlflow import MlflowClient

    from tests._support.registry import MODEL

    url, _, tracking_uri = stack
    _sign_in(browser, url, "olga")
    _open(browser, "Models", "Alias history")
    _click(browser, "Promote")  # the newest version, to champion
    _wait_for_texts(browser, ["promotion of v2 to champion: done"])
    client = MlflowClient(tracking_uri, registry_uri=tracking_uri)
    assert str(client.get_model_version_by_alias(MODEL, "champion").version) == "2"
    _screenshot(browser, "dashboard-promoted.png")
    _click(browser, "Roll back")
    _wait_for_texts(browser, ["rollback of champion: done"])
    assert str(client.get_model_version_by_alias(MODEL, "champion").version) == "1"


def test_a_viewer_is_refused_actions(stack: tuple[str, Traffic, str], browser: object) -> None:
    url, _, _ = stack
    _sign_in(browser, url, "vic")
    body = _open(browser, "Models", "Alias history")
    assert "Read-only: vic has no operator role" in body
    assert not _button(browser, "Promote").is_enabled()  # type: ignore[attr-defined]
    assert not _button(browser, "Roll back").is_enabled()  # type: ignore[attr-defined]
    _screenshot(browser, "dashboard-viewer-models.png")
    _click(browser, "Sign out")
    _wait_for_texts(browser, ["Sign in", "User name"])


def test_an_admin_manages_people(stack: tuple[str, Traffic, str], browser: object) -> None:
    url, _, _ = stack
    _sign_in(browser, url, "ada")
    _open(browser, "People and keys", "API keys")
    # Tables are drawn on a canvas: check the forms (the users list is in test_login.py).
    _wait_for_texts(browser, ["New user", "Disable a user", "New key", "Revoke a key"])
    _screenshot(browser, "dashboard-people-and-keys.png")


def test_single_sign_on_from_the_sign_in_page(
    stack: tuple[str, Traffic, str], browser: object
) -> None:
    """The button goes to the identity provider; its consent page sends the browser back to
    the service, then to the dashboard with a one-time code: signed in with the mapped role."""
    from selenium.webdriver.common.by import By

    url, _, _ = stack
    browser.get(url)  # type: ignore[attr-defined]
    _wait_for_texts(browser, ["Sign in with single sign-on"])
    link = '//a[normalize-space(.)="Sign in with single sign-on"]'
    browser.find_element(By.XPATH, link).click()  # type: ignore[attr-defined]
    _wait_for_texts(browser, ["sso-sofia"])  # the provider's page
    _screenshot(browser, "dashboard-sso-provider.png")
    browser.find_element(By.XPATH, '//button[normalize-space(.)="sso-sofia"]').click()  # type: ignore[attr-defined]
    body = _wait_for_texts(browser, ["Signed in as sofia (operator)", "champion", "Alerts"])
    assert "Single sign-on failed" not in body
    assert "login_code" not in browser.current_url  # type: ignore[attr-defined]
    _screenshot(browser, "dashboard-sso-signed-in.png")
