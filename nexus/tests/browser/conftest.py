"""Browser tests: Playwright for Python driving Debian's Chromium against a live daphne server.

No browser is downloaded: Chromium is the system's (`apt-get install chromium`; scripts/test
installs it when it is missing). One browser and one server serve the whole module; each
test gets a fresh browser context (its own cookies) and its own committed rows.

Tabs are a 1366x768 laptop screen, the smallest an operator is expected to use. Screenshots
go under each test's tmp path (pytest keeps the last runs': `--basetemp` to choose where),
`<tmp>/screenshots/<name>.png`; look at them when a page changes.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from accounts.models import Role, User
from nexus.tests.console.conftest import catalog, make_user, record_call

__all__ = ["catalog", "record_call"]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREEN = {"width": 1366, "height": 768}
ADMIN_EMAIL = "operator@example.com"
ADMIN_PASSWORD = "Browser-Test-Operator-42"


@pytest.fixture(scope="module")
def _sync_orm_beside_playwright(module_server: object) -> Iterator[None]:
    """Playwright's sync API keeps an event loop running in this thread between its calls;
    the tests' own ORM calls are plain sync code all the same, so Django is told to allow them.

    The server starts first, so that it never inherits the permission."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        yield


@pytest.fixture(scope="module")
def browser(_sync_orm_beside_playwright: None) -> Iterator[object]:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(
            f"{CHROMIUM} is missing: run scripts/test (it installs it) or `apt-get install -y chromium`."
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def operator(transactional_db) -> User:
    return make_user(ADMIN_EMAIL, role=Role.ADMIN, password=ADMIN_PASSWORD)


@pytest.fixture
def page(browser, module_server, operator, screenshot) -> Iterator[object]:
    """A signed-in admin's tab on the live server; a screenshot of it is kept at the end."""
    context = browser.new_context(base_url=module_server.url, viewport=SCREEN)
    context.set_default_timeout(10_000)
    tab = context.new_page()
    tab.goto("/admin/login/")
    tab.fill("#id_username", ADMIN_EMAIL)
    tab.fill("#id_password", ADMIN_PASSWORD)
    tab.click("input[type=submit]")
    tab.wait_for_url("**/admin/")
    yield tab
    screenshot(tab, "end")
    context.close()


@pytest.fixture
def anonymous_page(browser, module_server) -> Iterator[object]:
    """A tab on the live server with nobody signed in."""
    context = browser.new_context(base_url=module_server.url, viewport=SCREEN)
    context.set_default_timeout(10_000)
    yield context.new_page()
    context.close()


@pytest.fixture
def screenshot(tmp_path: Path) -> Callable[[object, str], Path]:
    """Saves a full-page screenshot of a tab as <tmp>/screenshots/<name>.png; returns its path."""
    folder = tmp_path / "screenshots"

    def take(tab, name: str) -> Path:
        folder.mkdir(exist_ok=True)
        path = folder / f"{name}.png"
        tab.screenshot(path=str(path), full_page=True)
        return path

    return take
