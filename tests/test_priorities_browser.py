"""The priorities pages in a real headless Chromium (Playwright driving Debian's ``chromium``)
against the Procfile's web process and the sandbox, seeded with the demo board and issues
resolved over the past weeks.

A colleague logs in with the viewer token, opens the list of boards, then a board: both columns,
the issues that need an impact, the chart and its table; the same page on a phone's screen; the
JSON and CSV; the admin pages stay shut; logging out. The browser reports no refusal of the
Content Security Policy. Screenshots are kept under the test's tmp_path (printed at the end).
Skipped without chromium or playwright, except under CI (see ``test_admin_browser``).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from sandbox.stack import BOT_TOKEN, Stack
from tests.test_admin_browser import CHROMIUM, CHROMIUM_ARGS, WAIT_MS, require_browser
from tests.test_priorities import ADMIN_TOKEN, VIEWER_TOKEN
from tests.test_priorities_e2e import seed_history

pytestmark = pytest.mark.e2e

PHONE = {"width": 390, "height": 844}


def test_a_colleague_reads_the_priorities_on_a_laptop_and_on_a_phone(tmp_path):
    require_browser()
    from playwright.sync_api import expect, sync_playwright

    env = {"ADMIN_TOKEN": ADMIN_TOKEN, "VIEWER_TOKEN": VIEWER_TOKEN}
    with Stack(tmp_path / "stack", seed="demo", processes=("web",), env=env) as stack:
        seed_history(stack, datetime.now(UTC))
        secrets = (VIEWER_TOKEN, ADMIN_TOKEN, BOT_TOKEN, stack.secret)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                page = browser.new_page(viewport={"width": 1280, "height": 900})
                page.set_default_timeout(WAIT_MS)
                refused: list[str] = []
                page.on(
                    "console",
                    lambda m: refused.append(m.text) if "Content Security" in m.text else None,
                )

                def no_secret_shown() -> None:
                    html = page.content()
                    assert not [s for s in secrets if s in html], page.url

                # Without a session: the login form, 401; the token, then Enter.
                answer = page.goto(f"{stack.app_url}/priorities")
                assert answer is not None and answer.status == 401
                expect(page.get_by_label("Token")).to_be_focused()
                page.keyboard.type(VIEWER_TOKEN)
                page.keyboard.press("Enter")
                expect(page.get_by_role("heading", level=1)).to_have_text("Priorities")
                shop = page.get_by_role("row", name="SHOP")
                expect(shop).to_contain_text("SHOP board")  # its name in Jira, and a link there
                expect(shop.get_by_role("link", name="in Jira")).to_have_attribute(
                    "href", re.compile(r"/secure/RapidBoard\.jspa\?rapidView=1$")
                )
                page.screenshot(path=str(tmp_path / "priorities-index.png"), full_page=True)

                # The board: two columns, the issues that need an impact, the chart.
                page.get_by_role("link", name="SHOP board", exact=True).click()
                expect(page.get_by_role("heading", level=1)).to_have_text(
                    "Priorities of SHOP board"
                )
                external = page.locator("section", has=page.locator("#col-external"))
                internal = page.locator("section", has=page.locator("#col-internal-preference"))
                missing = page.locator("section", has=page.locator("#col-missing"))
                expect(external.locator("tbody tr").first).to_contain_text("SHOP-3")
                expect(external).to_contain_text("set by a person in the field")
                expect(external.locator("tbody tr").first).to_contain_text("To Do")  # status
                expect(external).to_contain_text("inferred by rule 'checkout or billing bug'")
                expect(internal.locator("tbody tr")).to_have_count(1)
                expect(internal).to_contain_text("Order black medium-point pens")
                expect(missing).to_contain_text("no impact stated and no rule matched")
                expect(external.get_by_role("link", name="SHOP-3", exact=True)).to_have_attribute(
                    "href", f"{stack.sandbox_url}/browse/SHOP-3"
                )
                # side by side on a laptop
                left, right = external.bounding_box(), internal.bounding_box()
                assert left and right and left["x"] + left["width"] <= right["x"]
                counts = page.get_by_role("img", name="Issues resolved per week, by class")
                share = page.get_by_role("img", name="Share of resolved issues that served")
                expect(counts).to_be_visible()
                expect(share).to_be_visible()
                assert counts.locator("rect").count() > 12  # bars drawn, styled by the nonce
                fill = counts.locator(".series.serie-0 rect").first.evaluate(
                    "e => getComputedStyle(e).fill"
                )
                assert fill == "rgb(11, 87, 208)"
                expect(page.locator(".week-table tbody tr")).to_have_count(12)
                no_secret_shown()
                page.screenshot(path=str(tmp_path / "priorities-board.png"), full_page=True)

                # A phone: one column after the other, each issue a card, nothing to scroll
                # sideways.
                page.set_viewport_size(PHONE)
                page.reload()
                left, right = external.bounding_box(), internal.bounding_box()
                assert left and right and left["y"] + left["height"] <= right["y"]
                assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), (
                    "the page scrolls sideways on a phone"
                )
                expect(external.locator("thead")).not_to_be_in_viewport()
                expect(counts).to_be_visible()
                # each chart is whole on the screen: nothing cut off on the right, nor a box
                # that must be scrolled to see the last weeks
                for chart in page.locator(".chart svg").all():
                    box = chart.bounding_box()
                    assert box and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
                scrolls = page.evaluate(
                    "[...document.querySelectorAll('.chart-scroll')]"
                    ".some(e => e.scrollWidth > e.clientWidth)"
                )
                assert not scrolls, "a chart must be scrolled sideways on a phone"
                page.screenshot(path=str(tmp_path / "priorities-phone.png"), full_page=True)
                page.set_viewport_size({"width": 1280, "height": 900})

                # The same data, with the browser's session.
                data = page.request.get(f"{stack.app_url}/priorities/1.json")
                assert data.status == 200 and data.json()["columns"]["external"][0]["key"]
                sheet = page.request.get(f"{stack.app_url}/priorities/1.csv")
                assert sheet.status == 200
                assert sheet.text().startswith("key,summary,level,class,why")

                # The viewer's session opens no admin page.
                answer = page.goto(f"{stack.app_url}/admin/")
                assert answer is not None and answer.status == 401

                # Log out: the pages ask for the token again.
                page.goto(f"{stack.app_url}/priorities")
                page.get_by_role("button", name="Log out").click()
                expect(page.get_by_role("status")).to_have_text("You are logged out.")
                answer = page.goto(f"{stack.app_url}/priorities/1")
                assert answer is not None and answer.status == 401
                assert refused == [], refused
            finally:
                browser.close()
    print(f"screenshots in {tmp_path}")
