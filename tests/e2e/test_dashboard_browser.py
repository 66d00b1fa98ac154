"""The dashboard as an operator sees it: ``trajops serve`` and ``trajops dashboard`` as real
processes on loopback, traffic with ground truth through an A/B experiment, then the page in
headless Chromium until the service's own numbers appear. Screenshots go to
``build/test-artifacts/``."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests._support.api_keys import issue_key
from tests._support.browser import browser
from tests._support.mlflow_uris import restored_mlflow_uris
from tests._support.nginx import stop, wait_http
from tests._support.services import free_port
from tests.unit.dashboard._scenario import OFFLINE, Traffic, dashboard_registry, send_traffic
from trajops.settings import Settings

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
__all__ = ["browser"]  # the fixture, used by name

ARTIFACTS = Path(__file__).resolve().parents[2] / "build" / "test-artifacts"
TRAJOPS = str(Path(sys.executable).with_name("trajops"))


def _start(args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [TRAJOPS, *args], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Traffic]]:
    """A served model with traffic, and the dashboard on it; yields the dashboard URL."""
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
    _, token = issue_key(Settings(home=home, tracking_uri=reg.uri), scopes="admin")
    api_port, ui_port = free_port(), free_port()
    api = f"http://127.0.0.1:{api_port}"
    server = _start(["serve", "--port", str(api_port)], env)
    dashboard = None
    try:
        wait_http(f"{api}/readyz", server)
        with httpx.Client(base_url=api, timeout=60, headers={"X-API-Key": token}) as http:
            traffic = send_traffic(http, windows, n_requests=20)
        dashboard = _start(
            ["dashboard", "--port", str(ui_port), "--api-url", api, "--refresh", "5"],
            {**env, "TRAJOPS_DASHBOARD_API_KEY": token},
        )
        ui = f"http://127.0.0.1:{ui_port}"
        wait_http(f"{ui}/_stcore/health", dashboard)
        yield ui, traffic
    finally:
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


def test_dashboard_shows_the_services_numbers(stack: tuple[str, Traffic], browser: object) -> None:
    url, traffic = stack
    expected = traffic.ade_by_version_variant()
    online = [f"{ade:.3f} m" for ade in expected.values()]
    browser.get(url)  # type: ignore[attr-defined]
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

    # The trajectory viewer draws recent requests in the browser too.
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(f"{url}/trajectories")  # type: ignore[attr-defined]
    _wait_for_texts(browser, ["Trajectories", "0.500 m"])

    def drawn(d: object) -> bool:
        images = d.find_elements(By.CSS_SELECTOR, "img")  # type: ignore[attr-defined]
        return any(int(img.get_attribute("naturalWidth") or 0) > 300 for img in images)

    WebDriverWait(browser, 60, poll_frequency=0.5).until(drawn)
    _screenshot(browser, "dashboard-trajectories.png")
