"""A real Chromium (Debian's ``chromium`` package, driven by Playwright) against the whole stack.

Playwright's own browser download cannot work on machines without the internet, so the browser
is the system's: ``COUNCIL_CHROMIUM`` or the first of ``chromium``/``chromium-browser`` on PATH.
Without one the browser tests are skipped with a plain message on how to enable them, except
where ``COUNCIL_REQUIRE_BROWSER=1`` (CI sets it): there a missing browser is a failure.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Locator, Page, Playwright, expect, sync_playwright

from tests.e2e.procs import Services, write_config

ENABLE = "install Chromium to run them: `sudo apt-get install chromium` (or set COUNCIL_CHROMIUM to a Chromium binary)"
ARTIFACTS = Path(__file__).resolve().parents[2] / "build" / "test-artifacts"


def chromium_path() -> str | None:
    """The Chromium the browser tests drive, or None when this machine has none."""
    configured = os.environ.get("COUNCIL_CHROMIUM")
    if configured:
        return configured
    return shutil.which("chromium") or shutil.which("chromium-browser")


def pytest_report_header() -> str:
    found = chromium_path()
    return f"browser tests: Chromium at {found}" if found else f"browser tests: NOT RUN, no Chromium here; {ENABLE}"


@pytest.fixture(scope="module")
def playwright_session() -> Iterator[Playwright]:
    with sync_playwright() as playwright:
        yield playwright


@pytest.fixture(scope="module")
def browser(playwright_session: Playwright) -> Iterator[Browser]:
    executable = chromium_path()
    if executable is None:
        if os.environ.get("COUNCIL_REQUIRE_BROWSER") == "1":
            pytest.fail(f"COUNCIL_REQUIRE_BROWSER=1 but no Chromium was found; {ENABLE}")
        pytest.skip(f"browser tests not run: no Chromium on this machine; {ENABLE}")
    launched = playwright_session.chromium.launch(executable_path=executable, args=["--no-sandbox"])
    try:
        yield launched
    finally:
        launched.close()


@contextmanager
def open_page(browser: Browser, **context: Any) -> Iterator[Page]:
    """A page in a fresh browser context (viewport, colour scheme…); fails the test if the page threw."""
    opened_context = browser.new_context(**{"viewport": {"width": 1280, "height": 900}, **context})
    opened_context.set_default_timeout(30_000)
    opened = opened_context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    try:
        yield opened
    finally:
        opened_context.close()
    assert not errors, f"the page threw: {errors}"


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    with open_page(browser) as opened:
        yield opened


def stack(
    nats_url: str, tmp_path: Path, extra: str = "", env: dict[str, str] | None = None, tps: float = 40, tokens: int = 60
) -> Services:
    """Gateway, orchestrator and a runner as processes, members at a pace a person can watch."""
    running = Services(nats_url, write_config(tmp_path, ttft_ms=300, tps=tps, tokens=tokens, extra=extra), tmp_path)
    running.env.update(env or {})
    running.start("orchestrator", "orchestrator")
    running.start("runner", "runner")
    running.start_gateway()
    return running


@pytest.fixture
def site(nats_url: str, tmp_path: Path) -> Iterator[Services]:
    running = stack(nats_url, tmp_path)
    try:
        yield running
    finally:
        running.stop_all()


def screenshot(page: Page, name: str) -> Path:
    """Keep a picture of the page among the test run's artifacts (build/test-artifacts)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def ask(page: Page, site: Services, question: str) -> str:
    """Ask from the form on the home page; the council id of the page it lands on."""
    page.goto(site.url + "/")
    page.get_by_label("Question").fill(question)
    page.get_by_role("button", name="Ask the council").click()
    page.wait_for_url(re.compile(r"/councils/council_"))
    return page.url.rsplit("/", 1)[1]


def card(page: Page, model: str, stage: int = 1) -> Locator:
    """The card of one member in one stage."""
    return page.locator(f'article.member[data-stage="{stage}"][data-model="{model}"]')


def finished(page: Page) -> None:
    """Wait for the page to show the council completed and its stream closed."""
    expect(page.locator(".council")).to_have_attribute("data-status", "completed", timeout=60_000)
    expect(page.locator(".council")).to_have_attribute("data-connection", "ended")
