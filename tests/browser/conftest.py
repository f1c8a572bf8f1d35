"""A real Chromium (Debian's ``chromium`` package, driven by Playwright) against the whole stack.

Playwright's own browser download cannot work on machines without the internet, so the browser
is the system's: ``COUNCIL_CHROMIUM`` or the first of ``chromium``/``chromium-browser`` on PATH.
Without one the browser tests are skipped with a plain message on how to enable them, except
where ``COUNCIL_REQUIRE_BROWSER=1`` (CI sets it): there a missing browser is a failure.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, Playwright, sync_playwright

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


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(30_000)
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    try:
        yield opened
    finally:
        context.close()
    assert not errors, f"the page threw: {errors}"


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
