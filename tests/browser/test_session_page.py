"""A conversation in the browser: start it from the home page, ask, watch the answer come, follow up."""

from __future__ import annotations

import re

import httpx
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


def test_a_group_discussion_streams_each_pass_and_shows_who_builds_on_whom(page: Page, site: Services) -> None:
    page.goto(site.url + "/")
    page.get_by_label("Mission").fill("Choose a first programming language")
    page.get_by_label("Mode").select_option("group")
    page.get_by_role("button", name="Start a conversation").click()
    page.wait_for_url(re.compile(r"/sessions/session_"))
    expect(page.locator("h1")).to_have_text("Group discussion")
    page.get_by_role("textbox", name="Question").fill("Python or Rust first?")
    page.get_by_role("button", name="Send").click()
    turn = page.locator("li.turn").nth(0)
    # Members' messages show while they are still being written, before the pass is over.
    expect(turn.locator('.pass[data-round="1"] .group-message .text.live').first).not_to_be_empty(timeout=30_000)
    expect(turn).to_have_attribute("data-status", "completed", timeout=90_000)
    session_id = page.url.rsplit("/", 1)[1]
    view = httpx.get(f"{site.url}/api/v1/sessions/{session_id}", params={"format": "json"}).json()
    messages = view["turns"][0]["discussion"]["messages"]
    for said in messages:
        shown = turn.locator(f'.pass[data-round="{said["round"]}"] .group-message[data-model="{said["model"]}"]')
        expect(shown.locator(".text")).to_contain_text(said["text"].split()[0])
        if said["builds_on"]:
            expect(shown.locator(".builds-on")).to_contain_text("builds on")
    assert any(said["builds_on"] for said in messages if said["round"] == 2)
    expect(turn.locator(".pass")).to_have_count(2)
    expect(turn.get_by_role("link", name="The whole deliberation")).to_have_count(0)
    screenshot(page, "session-group-discussion")
    page.reload()
    expect(page.locator('li.turn .pass[data-round="2"] .builds-on').first).to_contain_text("builds on")
