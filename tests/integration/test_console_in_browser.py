"""The staff console in a real browser (headless Debian Chromium over CDP, one for the
module): the agent's flow end to end, a partner's scope, the live screen-pop after a
signed Twilio webhook, an axe-core scan of every page and screenshots for review
(``artifacts/console/``, not committed).

Every page runs under the console's Content-Security-Policy: a CSP violation reported
by the browser fails the test, so htmx and console.js are proven to work without
inline script or eval."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import pytest

from commands import accounts as ac
from tests.support.browser import Page, chromium_missing, chromium_page, live_server
from tests.support.console import (
    STATUS_PATH,
    ConsoleHub,
    console_hub,
    ringing,
    twilio_post_args,
)

pytestmark = pytest.mark.skipif(chromium_missing() is not None,
                                reason=chromium_missing() or "")

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts" / "console"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ConsoleHub, str, Page]]:
    with console_hub(tmp_path_factory.mktemp("console-browser") / "data",
                     timeline_events=60) as ch, live_server(ch.app) as base, \
            chromium_page() as page:
        page.send("Log.enable")
        page.send("Emulation.setDeviceMetricsOverride", width=1280, height=800,
                  deviceScaleFactor=1, mobile=False)
        yield ch, base, page


def js(value: Any) -> str:
    return json.dumps(value)


def sign_in(page: Page, base: str, token: str) -> None:
    page.send("Network.clearBrowserCookies")
    page.navigate(f"{base}/console/sign-in")
    page.type_into("#api_key", token)
    navigates(page, "document.querySelector('form[action$=\"/sign-in\"] button').click()")


def no_serious_violations(page: Page, name: str) -> None:
    violations = page.axe()
    bad = [v for v in violations if v["impact"] in ("serious", "critical")]
    assert bad == [], f"{name}: {json.dumps(bad, indent=1)}"


def no_csp_violations(page: Page) -> None:
    reports = [e for e in page.events if e.get("method") == "Log.entryAdded"
               and "Content Security Policy" in e["params"]["entry"].get("text", "")]
    assert reports == [], reports


def search_and_open(page: Page, text: str, expect: str) -> None:
    page.type_into("#q", text)
    page.wait_until(f"[...document.querySelectorAll('#results a.result')]"
                    f".some(a => a.textContent.includes({js(expect)}))")
    page.press("ArrowDown")  # keyboard only: down into the results, Enter to open
    assert page.evaluate("document.activeElement.classList.contains('result')")
    page.evaluate("window.__before = true")
    page.press("Enter")
    page.wait_until("window.__before === undefined && document.readyState === 'complete' "
                    "&& !!window.htmx")


def choose_channel(page: Page, channel: str) -> None:
    page.evaluate(f"(() => {{ const s = document.getElementById('f-channel'); "
                  f"s.value = {js(channel)}; "
                  f"s.dispatchEvent(new Event('change', {{bubbles: true}})); }})()")


def settled(page: Page) -> None:
    """Wait until htmx has swapped, processed and settled what it loaded (a click on
    content it has not processed yet would do nothing)."""
    page.wait_until("!!window.htmx && !document.querySelector("
                    "'.htmx-request, .htmx-swapping, .htmx-settling, .htmx-added')")


def navigates(page: Page, action: str) -> None:
    """Run ``action`` and wait until a new document has loaded."""
    page.evaluate("window.__before = true")
    page.evaluate(action)
    page.wait_until("window.__before === undefined && document.readyState === 'complete' "
                    "&& !!window.htmx")


def rows(page: Page) -> int:
    return int(page.evaluate("document.querySelectorAll('#timeline-rows li.row').length"))


def test_an_agent_finds_reads_and_acts_on_a_customer(served: tuple[ConsoleHub, str, Page]
                                                     ) -> None:
    ch, base, page = served
    sign_in(page, base, ch.tokens["service"])
    assert page.evaluate("location.pathname") == "/console"
    no_serious_violations(page, "search")
    # search by a national-format number, open with the keyboard
    page.type_into("#q", "020 7946")
    page.wait_until("document.querySelectorAll('#results a.result').length > 0")
    page.screenshot(ARTIFACTS / "search.png")
    page.evaluate("document.getElementById('q').value = ''")
    search_and_open(page, "020 7946 0018", "Ada Lovelace")
    assert page.evaluate("document.querySelector('h1').textContent") == "Ada Lovelace"
    page.evaluate("window.__sameDocument = true")  # gone if anything reloads the page
    no_serious_violations(page, "customer")

    # scroll to the oldest event: pages load as the end of the list comes into view
    first_screen = rows(page)
    assert 0 < first_screen < ch.demo.ada_events
    deadline = time.monotonic() + 20
    while not page.evaluate("!!document.getElementById('timeline-end')"):
        assert time.monotonic() < deadline, "never reached the oldest touchpoint"
        page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
        time.sleep(0.05)
    ids = page.evaluate("[...document.querySelectorAll('#timeline-rows li.row details')]"
                        ".map(d => d.getAttribute('hx-get'))")
    assert len(ids) == len(set(ids)), [i for i in ids if ids.count(i) > 1]
    assert rows(page) == ch.demo.ada_events
    assert "registered" in page.evaluate(
        "[...document.querySelectorAll('#timeline-rows li.row')].at(-1).dataset.kind")

    # filter by channel
    choose_channel(page, "email")
    page.wait_until("[...document.querySelectorAll('#timeline-rows li.row')]"
                    ".every(r => r.dataset.channel === 'email') && "
                    "document.querySelectorAll('#timeline-rows li.row').length > 0")

    # expand the email with the attachment and download it
    settled(page)
    page.evaluate("[...document.querySelectorAll('#timeline-rows li.row')].find(r => "
                  "r.querySelector('.subject')?.textContent === 'Question 1')"
                  ".querySelector('summary').click()")
    link = page.wait_until("(() => { const a = [...document.querySelectorAll('.files a')]"
                           ".find(a => a.textContent.includes('invoice.pdf'));"
                           " return a && a.getAttribute('href'); })()")
    assert "question number 1" in page.evaluate("document.querySelector('pre.body').textContent")
    size = page.evaluate(f"fetch({js(link)}).then(r => r.arrayBuffer()).then(b => b.byteLength)")
    assert size == len(b"%PDF-1.4\n% the invoice the customer sent\n")
    page.screenshot(ARTIFACTS / "customer.png")
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(ARTIFACTS / "customer-first-screen.png", full=False)
    no_serious_violations(page, "customer, email expanded")

    # add a note: it appears on the timeline without a reload
    choose_channel(page, "")
    page.wait_until("[...document.querySelectorAll('#timeline-rows li.row')]"
                    ".some(r => r.dataset.channel !== 'email')")
    settled(page)
    page.type_into("#note-text", "Prefers email; <b>not</b> before 10am")
    page.evaluate("document.querySelector('#note-form button[type=submit]').click()")
    page.wait_until("document.getElementById('action-status').textContent.includes('Note added')")
    assert page.evaluate("document.querySelector('#timeline-rows li.row .text').textContent") \
        == "Prefers email; <b>not</b> before 10am"
    assert page.evaluate("window.__sameDocument === true")
    assert page.evaluate("document.getElementById('note-text').value") == ""

    # merge the duplicate, with a preview, then undo it
    page.evaluate("document.querySelector('details.action:last-of-type').open = true")
    page.type_into("#merge-other", "Ada L.")
    page.evaluate("document.querySelector('#merge-other').form.requestSubmit()")
    page.wait_until("[...document.querySelectorAll('#merge-area button.link')].length > 0")
    settled(page)
    page.evaluate("[...document.querySelectorAll('#merge-area button.link')].find(b => "
                  "b.textContent.includes('Ada L.')).click()")
    page.wait_until("!!document.getElementById('confirm-merge')")
    settled(page)
    assert "Ada L." in page.evaluate("document.getElementById('merge-area').textContent")
    no_serious_violations(page, "merge preview")
    page.screenshot(ARTIFACTS / "merge-preview.png")
    navigates(page, "document.getElementById('confirm-merge').click()")
    assert page.evaluate("!!document.querySelector('.badge.merged')")
    assert ch.demo.duplicate in page.evaluate("document.getElementById('panel-profile')"
                                              ".textContent")
    settled(page)
    page.evaluate("document.querySelector('#panel-profile button.link').click()")
    page.wait_until("!!document.getElementById('confirm-unmerge')")
    settled(page)
    navigates(page, "document.getElementById('confirm-unmerge').click()")
    assert not page.evaluate("!!document.querySelector('.badge.merged')")
    no_csp_violations(page)

    # sign out: the console is closed to this browser
    navigates(page, "document.querySelector('form.signout button').click()")
    assert page.evaluate("location.pathname") == "/console/sign-in"
    no_serious_violations(page, "sign-in")
    page.screenshot(ARTIFACTS / "sign-in.png")
    page.navigate(f"{base}/console/customers/{ch.demo.ada}")
    assert page.evaluate("location.pathname") == "/console/sign-in"


def test_a_partner_key_sees_only_its_customers(served: tuple[ConsoleHub, str, Page]) -> None:
    ch, base, page = served
    sign_in(page, base, ch.tokens["partner"])
    page.type_into("#q", "ada")
    page.wait_until("document.getElementById('results').textContent.includes('No customer')")
    page.evaluate("document.getElementById('q').value = ''")
    search_and_open(page, "pat", "Pat Partnered")
    assert page.evaluate("document.querySelector('h1').textContent") == "Pat Partnered"
    assert "Internal about Pat" not in page.evaluate("document.body.textContent")
    page.navigate(f"{base}/console/customers/{ch.demo.ada}")
    assert page.evaluate("document.querySelector('h1').textContent") == "404"


def test_the_screen_pop_shows_a_card_within_a_second_of_a_signed_twilio_webhook(
        served: tuple[ConsoleHub, str, Page]) -> None:
    ch, base, page = served
    sign_in(page, base, ch.tokens["agent"])
    page.navigate(f"{base}/console/screen-pop")
    page.wait_until("document.getElementById('pop-state').textContent.includes('Listening')")
    with httpx.Client(base_url=base) as http:
        body, headers = twilio_post_args(ringing("CA-known-1", "020 7946 0018"))
        sent = time.monotonic()
        assert http.post(STATUS_PATH, content=body, headers=headers).status_code == 200
        page.wait_until("[...document.querySelectorAll('#calls .call')].some(c => "
                        "c.textContent.includes('Ada Lovelace'))", timeout=5, poll=0.01)
        assert time.monotonic() - sent < 1.0
        body, headers = twilio_post_args(ringing("CA-unknown-1", "+44 161 496 0999"))
        assert http.post(STATUS_PATH, content=body, headers=headers).status_code == 200
        page.wait_until("[...document.querySelectorAll('#calls .call')].some(c => "
                        "c.textContent.includes('Unknown caller'))", timeout=5, poll=0.01)
        forged, _ = twilio_post_args(ringing("CA-forged", "020 7946 0018"))
        refused = http.post(STATUS_PATH, content=forged, headers={
            "Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": "x"})
        assert refused.status_code == 403
    assert page.evaluate("document.querySelectorAll('#calls .call').length") == 2
    no_serious_violations(page, "screen-pop")
    no_csp_violations(page)
    page.screenshot(ARTIFACTS / "screen-pop.png")
    # one click on the unknown caller's card makes the prospect and opens it
    navigates(page, "document.querySelector('.card.unknown button').click()")
    assert page.evaluate("document.querySelector('h1').textContent") == "+441614960999"


def test_admins_see_the_read_models_status(served: tuple[ConsoleHub, str, Page]) -> None:
    ch, base, page = served
    sign_in(page, base, ch.tokens["admin"])
    page.navigate(f"{base}/console/admin/status")
    names = page.evaluate("[...document.querySelectorAll('tbody th')].map(t => t.textContent)")
    assert {"timeline", "directory", "summary"} <= set(names)
    no_serious_violations(page, "status")
    page.screenshot(ARTIFACTS / "status.png")


def test_an_account_page_and_its_rolled_up_timeline_are_accessible(
        served: tuple[ConsoleHub, str, Page]) -> None:
    ch, base, page = served
    opened = ch.hub.execute(ac.OpenAccount(name="Browser Engines Ltd", owner="mia",
                                           source_key="browser:account"))
    ch.hub.execute(ac.LinkContact(account_id=UUID(opened.customer_id),
                                  customer_id=UUID(ch.demo.ada), role="buyer",
                                  joined_at=datetime(2000, 1, 1, tzinfo=UTC)))
    accounts = ch.deps.read_views.accounts
    deadline = time.monotonic() + 20
    while accounts.position() < int(ch.hub.recorder.max_notification_id() or 0):
        assert time.monotonic() < deadline, "the accounts read model did not catch up"
        time.sleep(0.01)
    sign_in(page, base, ch.tokens["sales"])
    page.navigate(f"{base}/console/customers/{ch.demo.ada}")
    assert page.evaluate("!!document.querySelector('#panel-accounts a')")
    navigates(page, "document.querySelector('#panel-accounts a').click()")
    assert page.evaluate("document.querySelector('h1').textContent") == "Browser Engines Ltd"
    assert page.evaluate("document.querySelectorAll('#panel-contacts tbody tr').length") == 1
    no_serious_violations(page, "account")
    no_csp_violations(page)
    page.screenshot(ARTIFACTS / "account.png")
    navigates(page, "document.querySelector('#account-timeline').click()")
    assert page.evaluate("document.querySelectorAll('#account-timeline-rows tbody tr')"
                         ".length") > 1
    no_serious_violations(page, "account timeline")
    no_csp_violations(page)
    page.screenshot(ARTIFACTS / "account-timeline.png")
