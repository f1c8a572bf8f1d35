"""The page on a phone in dark mode, and driven from the keyboard alone."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import ask, card, finished, open_page, screenshot, stack
from tests.e2e.procs import Services

MEMBERS = ["simulated/atlas", "simulated/beacon", "simulated/cipher"]


@pytest.fixture
def slow_site(nats_url: str, tmp_path: Path) -> Iterator[Services]:
    """Members slow enough that a person tabbing through the page reaches a Skip button in time."""
    running = stack(nats_url, tmp_path, tps=8, tokens=80)
    try:
        yield running
    finally:
        running.stop_all()


def overflows_sideways(page: Page) -> bool:
    """Whether the page is wider than the viewport, so a phone user would have to scroll sideways."""
    return bool(page.evaluate("document.documentElement.scrollWidth > document.documentElement.clientWidth"))


def brightness(page: Page, selector: str, prop: str) -> float:
    """The mean of the red, green and blue of a computed colour (0 black … 255 white)."""
    colour = page.eval_on_selector(selector, f"element => getComputedStyle(element).{prop}")
    channels = [float(part) for part in re.findall(r"[\d.]+", colour)[:3]]
    return sum(channels) / 3


def tab_to(page: Page, script: str, limit: int = 80) -> None:
    """Press Tab until ``script`` (about ``document.activeElement``) holds, as a keyboard user would."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate(f"(() => {{ const element = document.activeElement; return Boolean({script}); }})()"):
            return
    raise AssertionError(f"{limit} presses of Tab never reached an element where {script}")


def test_on_a_phone_in_dark_mode_a_council_reads_in_one_column(browser: Browser, site: Services) -> None:
    phone = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True, "color_scheme": "dark"}
    with open_page(browser, **phone) as page:
        ask(page, site, "A question asked from a phone, at night")
        expect(card(page, MEMBERS[0])).to_have_attribute("data-status", "generating")
        assert brightness(page, "body", "backgroundColor") < 60  # dark background…
        assert brightness(page, ".prompt", "color") > 180  # …with light text
        finished(page)
        lefts = {round(card(page, model).bounding_box()["x"]) for model in MEMBERS}  # type: ignore[index]
        assert len(lefts) == 1, f"the answer cards sit side by side on a phone: {lefts}"
        assert not overflows_sideways(page)
        screenshot(page, "phone-dark-council")
        page.goto(site.url + "/")
        expect(page.locator(".history tbody tr")).to_have_count(1)
        assert not overflows_sideways(page)
        screenshot(page, "phone-dark-home")


def test_ask_skip_and_read_the_reviews_with_the_keyboard_alone(page: Page, slow_site: Services) -> None:
    page.goto(slow_site.url + "/")
    expect(page.get_by_label("Question")).to_be_visible()
    tab_to(page, "element.id === 'question'")
    page.keyboard.type("Asked without a mouse")
    page.keyboard.press("Control+Enter")
    page.wait_for_url(re.compile(r"/councils/council_"))
    cipher = card(page, MEMBERS[2])
    expect(cipher).to_have_attribute("data-status", "generating")
    tab_to(
        page,
        f"element.closest('article.member[data-model=\"{MEMBERS[2]}\"]') && element.textContent === 'Skip this member'",
    )
    page.keyboard.press("Enter")
    expect(cipher).to_have_attribute("data-status", "skipped")
    expect(page.locator("#stage-2")).to_be_visible(timeout=60_000)
    tab_to(page, "element.getAttribute('role') === 'tab'")
    first = page.evaluate("document.activeElement.dataset.reviewer")
    page.keyboard.press("ArrowRight")
    second = page.evaluate("document.activeElement.dataset.reviewer")
    assert second != first  # the arrow moved focus to the next reviewer's tab…
    expect(page.locator(f'.tabs [data-reviewer="{second}"]')).to_have_attribute("aria-selected", "true")
    expect(page.locator(".tab-panel")).to_have_attribute("aria-labelledby", f"tab-{second}")  # …and showed their review
    finished(page)
    screenshot(page, "keyboard-finished")
