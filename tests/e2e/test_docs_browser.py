"""``/docs`` in a real browser with no network: the page loads without a key, Swagger UI
renders the service's operations from local assets, and its Authorize dialog offers the key."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests._support.browser import browser
from tests._support.registry import build_registry
from trajops.serving import AppOptions, create_app, serve_in_thread
from trajops.settings import Settings

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
__all__ = ["browser"]  # the fixture, used by name

ARTIFACTS = Path(__file__).resolve().parents[2] / "build" / "test-artifacts"


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("docs")
    registry = build_registry(root / "registry", versions=1)
    settings = Settings(home=root / "home", tracking_uri=registry.uri)
    with serve_in_thread(create_app(settings, options=AppOptions(poll=False))) as base:
        yield base


def test_swagger_ui_renders_offline_with_its_authorize_button(browser: object, url: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver = browser
    driver.get(f"{url}/docs")  # type: ignore[attr-defined]
    wait = WebDriverWait(driver, 60, poll_frequency=0.5)
    wait.until(lambda d: "/v1/predict" in d.find_element(By.TAG_NAME, "body").text)
    authorize = driver.find_element(By.CSS_SELECTOR, "button.authorize")  # type: ignore[attr-defined]
    authorize.click()
    wait.until(lambda d: "X-API-Key" in d.find_element(By.TAG_NAME, "body").text)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    assert driver.save_screenshot(str(ARTIFACTS / "docs-authorize.png"))  # type: ignore[attr-defined]
    logs = driver.get_log("browser")  # type: ignore[attr-defined]
    assert not [entry for entry in logs if entry.get("level") == "SEVERE"], logs
