"""The web page once auth is on: it asks for a key, keeps it as a cookie, and works with it."""

from __future__ import annotations

import subprocess

from playwright.sync_api import Page, expect

from council.cli import service_command
from tests.browser.conftest import ask, screenshot
from tests.e2e.procs import Services


def test_the_page_asks_for_a_key_keeps_it_and_then_asks_and_follows_a_council(page: Page, site: Services) -> None:
    created = subprocess.run(
        service_command("keys", "create", "--tenant", "web"), capture_output=True, text=True, timeout=60, env=site.env
    )
    key = created.stdout.split()[0]
    page.goto(site.url + "/")
    prompt = page.locator("#key-prompt")
    expect(prompt).to_be_visible(timeout=15_000)  # the gateway sees the new key within moments
    page.get_by_label("API key").fill("ck_000000000000_" + "0" * 48)
    page.get_by_role("button", name="Use this key").click()
    expect(prompt.get_by_role("status")).to_contain_text("not accepted")
    screenshot(page, "api-key-prompt")

    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Use this key").click()
    expect(page.locator("#key-prompt")).to_have_count(0)
    ask(page, site, "What is the best way to learn Rust?")  # the key goes with every request, the stream's too
    expect(page.locator(".synthesis")).to_contain_text("Council synthesis:", timeout=60_000)
    cookies = {c["name"]: c for c in page.context.cookies()}
    assert cookies["council_key"]["httpOnly"] and cookies["council_key"]["sameSite"] == "Strict"
