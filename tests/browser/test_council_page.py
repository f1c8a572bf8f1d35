"""The web page in a real Chromium: ask, watch it stream, steer it, lose the network, reload, revisit."""

from __future__ import annotations

import re

from playwright.sync_api import Page, Request, expect

from tests.browser.conftest import ask, card, finished, screenshot
from tests.e2e.procs import Services, wait_status

MEMBERS = ["simulated/atlas", "simulated/beacon", "simulated/cipher"]


def shows_each_answer_once(page: Page, site: Services, council_id: str) -> None:
    """Every answer and the synthesis on the page are the result's, whole and exactly once."""
    result = wait_status(site.url, council_id, {"completed"})
    for model in MEMBERS:
        text = result["stage1"]["answers"][model]["text"]  # type: ignore[index]
        assert card(page, model).locator(".answer").inner_text().strip() == text.strip()
    synthesis = result["stage3"]["synthesis"]  # type: ignore[index]
    assert page.locator(".synthesis").inner_text().strip() == synthesis.strip()


def test_ask_from_the_form_and_watch_the_council_to_its_end(page: Page, site: Services) -> None:
    council_id = ask(page, site, "How should a small team adopt Rust?")
    expect(page.locator(".prompt")).to_have_text("How should a small team adopt Rust?")
    atlas = card(page, MEMBERS[0])
    expect(atlas.locator("h3")).to_have_text("Atlas")  # the display name from the catalogue
    # Tokens show while the member is still generating, before it completes.
    expect(atlas).to_have_attribute("data-status", "generating")
    expect(atlas.locator(".answer")).not_to_be_empty()
    assert atlas.get_attribute("data-status") == "generating"
    screenshot(page, "council-mid-stream")
    finished(page)
    expect(page.locator('[data-role="counts"]')).to_have_text("3/3 models answered • 3/3 reviews completed")
    for model in MEMBERS:
        expect(card(page, model)).to_have_attribute("data-status", "completed")
    expect(page.locator(".tabs [role=tab]")).to_have_count(3)
    expect(page.locator(".aggregate tbody tr")).to_have_count(3)
    expect(page.locator("#stage-3 .byline")).to_contain_text("Written by the chairman, Sage")
    result = wait_status(site.url, council_id, {"completed"})
    answer = result["stage1"]["answers"][MEMBERS[1]]["text"]  # type: ignore[index]
    # Streamed token by token, the answer on the page is the answer in the result, once.
    expect(card(page, MEMBERS[1]).locator(".answer")).to_have_text(re.compile(re.escape(answer.split()[0])))
    assert card(page, MEMBERS[1]).locator(".answer").inner_text().strip() == answer.strip()
    screenshot(page, "council-finished")


def test_each_review_shows_the_labels_as_that_reviewer_saw_them(page: Page, site: Services) -> None:
    council_id = ask(page, site, "Which database for a ledger?")
    finished(page)
    result = wait_status(site.url, council_id, {"completed"})
    names = {"simulated/atlas": "Atlas", "simulated/beacon": "Beacon", "simulated/cipher": "Cipher"}
    for reviewer, review in result["stage2"]["reviews"].items():  # type: ignore[index]
        page.locator(f'.tabs [data-reviewer="{reviewer}"]').click()
        panel = page.locator(".tab-panel")
        for label, member in review["labels"].items():
            expect(panel.locator(".labels li", has_text=f"Response {label}")).to_have_text(
                f"Response {label} → {names[member]}"
            )
        if review["parse_ok"]:
            expect(panel.locator(".ranking li")).to_have_text([names[m] for m in review["ranking"]])


def test_a_finished_council_shows_at_once_after_a_reload_without_duplicated_text(page: Page, site: Services) -> None:
    council_id = ask(page, site, "Explain ownership in Rust")
    expect(card(page, MEMBERS[0])).to_have_attribute("data-status", "generating")
    page.reload()  # mid-stage: the page rebuilds from the stream
    finished(page)
    shows_each_answer_once(page, site, council_id)
    page.goto(site.url + f"/councils/{council_id}")
    finished(page)
    expect(page.get_by_role("link", name="Download .json")).to_have_attribute(
        "href", f"/api/v1/council/{council_id}?format=json"
    )
    with page.expect_download() as download:
        page.get_by_role("link", name="Download .md").click()
    assert "Sage" in download.value.path().read_text()


def test_the_history_lists_councils_newest_first(page: Page, site: Services) -> None:
    first = ask(page, site, "First question of the day")
    finished(page)
    second = ask(page, site, "Second question of the day")
    page.goto(site.url + "/")
    rows = page.locator(".history tbody tr")
    expect(rows.first).to_have_attribute("data-council-id", second)
    expect(rows.nth(1)).to_have_attribute("data-council-id", first)
    expect(rows.nth(1)).to_contain_text("First question of the day")
    expect(rows.nth(1)).to_contain_text("completed")
    rows.nth(1).get_by_role("link").click()
    page.wait_for_url(f"**/councils/{first}")
    finished(page)


def test_skip_and_cancel_from_the_page(page: Page, site: Services) -> None:
    ask(page, site, "Skip one member, then wait")
    cipher = card(page, MEMBERS[2])
    cipher.get_by_role("button", name="Skip this member").click()
    expect(cipher).to_have_attribute("data-status", "skipped")
    expect(cipher.locator(".error")).to_have_text("skipped on request")
    finished(page)
    expect(page.locator('[data-role="counts"]')).to_contain_text("2/3 models answered")
    ask(page, site, "Cancel this one")
    expect(card(page, MEMBERS[0])).to_have_attribute("data-status", "generating")
    page.get_by_role("button", name="Cancel council").click()
    expect(page.locator(".council")).to_have_attribute("data-status", "cancelled")
    expect(page.locator(".notice")).to_contain_text("Cancelled")
    expect(page.get_by_role("button", name="Cancel council")).to_be_hidden()


def test_offline_mid_stage_and_back_loses_nothing_and_repeats_nothing(page: Page, site: Services) -> None:
    streams: list[Request] = []
    page.on("request", lambda request: streams.append(request) if request.url.endswith("/events") else None)
    council_id = ask(page, site, "What survives a network cut?")
    expect(card(page, MEMBERS[0])).to_have_attribute("data-status", "generating")
    # Chromium's offline mode leaves an open stream alone; the connection is cut for real by
    # taking its gateway away while the page is offline, as a dropped network would.
    page.context.set_offline(True)
    site.kill("gateway")
    expect(page.locator(".council")).to_have_attribute("data-connection", "reconnecting…")
    seen = int(page.locator(".council").get_attribute("data-last-seq") or 0)
    site.start_gateway()
    page.context.set_offline(False)
    finished(page)
    resumed_from = [value for request in streams if (value := request.header_value("last-event-id"))]
    assert resumed_from and int(resumed_from[0]) == seen  # EventSource resumed where the page had got to
    shows_each_answer_once(page, site, council_id)
