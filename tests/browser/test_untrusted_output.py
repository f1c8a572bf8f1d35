"""Model output is untrusted: markdown renders, markup that could run code does not; errors show in words."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import card, stack
from tests.e2e.procs import Services
from tests.fakes.providers import FakeProviderServer

HOSTILE = [
    "**Bold** advice.\n\n",
    "<img src=x onerror=\"window.__pwned='img'\">",
    "<script>window.__pwned='script'</script>",
    "[click](javascript:window.__pwned='link')",
    "<svg><animate onbegin=\"window.__pwned='svg'\" attributeName=x dur=1s></svg>",
    "<iframe srcdoc=\"<script>parent.__pwned='iframe'</script>\"></iframe>",
    " The end.",
]


def extra(fake: FakeProviderServer) -> str:
    return f"""
[providers.fake]
kind = "openai"
base_url = "{fake.base_url}"
api_key_env = "{fake.key_env}"

[[models]]
id = "fake/mallory"
provider = "fake"
name = "mallory"
display_name = "Mallory"

[[models]]
id = "fake/broken"
provider = "fake"
name = "broken"
display_name = "Broken"
"""


@pytest.fixture
def hostile_site(nats_url: str, tmp_path: Path, fake_openai: FakeProviderServer) -> Iterator[Services]:
    fake_openai.script("mallory", tokens=HOSTILE, token_delay_s=0.05)
    fake_openai.script("broken", status=401, error_message="Incorrect API key provided")
    running = stack(nats_url, tmp_path, extra=extra(fake_openai), env=fake_openai.env)
    try:
        yield running
    finally:
        running.stop_all()


def test_an_answer_with_markup_renders_as_markdown_and_runs_nothing(page: Page, hostile_site: Services) -> None:
    page.goto(hostile_site.url + "/")
    page.locator('input[value="simulated/beacon"]').uncheck()
    page.locator('input[value="simulated/cipher"]').uncheck()
    page.locator('input[value="fake/mallory"]').check()
    page.locator('input[value="fake/broken"]').check()
    page.get_by_label("Question").fill("Say something dangerous")
    page.get_by_role("button", name="Ask the council").click()
    mallory = card(page, "fake/mallory")
    expect(mallory).to_have_attribute("data-status", "completed", timeout=30_000)
    answer = mallory.locator(".answer")
    expect(answer.locator("strong")).to_have_text("Bold")  # markdown is rendered
    assert answer.locator("script, iframe, [onerror], [onbegin], [srcdoc]").count() == 0
    assert answer.locator("a[href^='javascript']").count() == 0
    expect(page.locator(".council")).to_have_attribute("data-status", "completed", timeout=60_000)
    assert page.evaluate("window.__pwned") is None
    # The failed member says why, in words.
    broken = card(page, "fake/broken")
    expect(broken).to_have_attribute("data-status", "failed")
    expect(broken.locator(".error")).to_contain_text("401")


def test_an_unknown_council_says_so(page: Page, hostile_site: Services) -> None:
    page.goto(hostile_site.url + "/councils/council_20260101_0000_nothere")
    expect(page.get_by_role("alert")).to_contain_text("no council council_20260101_0000_nothere")
    page.goto(hostile_site.url + "/councils/<script>")
    expect(page.get_by_role("alert")).to_contain_text("not a council id")
