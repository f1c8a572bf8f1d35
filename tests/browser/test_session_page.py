"""A conversation in the browser: start it from the home page, ask, watch the answer come, follow up."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from tests.browser.conftest import screenshot
from tests.e2e.procs import Services


def test_a_two_turn_conversation_from_the_home_page_survives_a_reload(page: Page, site: Services) -> None:
    page.goto(site.url + "/")
    page.get_by_label("Mission").fill("Mentor a new Rust programmer")
    page.get_by_role("button", name="Start a conversation").click()
    page.wait_for_url(re.compile(r"/sessions/session_"))
    expect(page.locator(".mission")).to_have_text("Mentor a new Rust programmer")

    question = page.get_by_role("textbox", name="Question")
    send = page.get_by_role("button", name="Send")
    question.fill("How do I start learning Rust?")
    send.click()
    first = page.locator("li.turn").nth(0)
    expect(first).to_have_attribute("data-status", "running", timeout=30_000)
    expect(send).to_be_disabled()  # one turn at a time
    expect(first).to_have_attribute("data-status", "completed", timeout=60_000)
    expect(first.locator(".answer")).to_contain_text("Council synthesis:")

    question.fill("Which book did you mean?")
    question.press("Control+Enter")
    second = page.locator("li.turn").nth(1)
    expect(second).to_have_attribute("data-status", "completed", timeout=60_000)
    # The second answer follows up on the first question: the conversation reached the council.
    expect(second.locator(".answer")).to_contain_text('Following up on "How do I start learning Rust?"')
    screenshot(page, "session-two-turns")

    page.reload()
    expect(page.locator("li.turn")).to_have_count(2)
    expect(page.locator("li.turn .question").nth(1)).to_contain_text("Which book did you mean?")
    session_id = page.url.rsplit("/", 1)[1]
    page.goto(site.url + "/")
    expect(page.locator(f'.recent-sessions li[data-session-id="{session_id}"]')).to_contain_text("2 turns")
    page.locator(f'.recent-sessions li[data-session-id="{session_id}"] a').click()
    page.wait_for_url(re.compile(session_id))
    expect(page.locator("li.turn")).to_have_count(2)
