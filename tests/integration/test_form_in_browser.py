"""A real browser (headless Debian Chromium over CDP) on the public pages: it fills in and
submits a public form (the submission appears on the customer's stream), and it uses the
self-service help centre end to end — search, read an article whose hostile Markdown stays
inert, "still need help" (a case opens with the article attached), then the case's signed
status link and a reply through it. Every page is checked with axe-core. One browser and
one server serve the whole module."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID

import pytest

from channels.web.config import FormsConfig
from channels.web.forms import forms_router
from channels.web.selfservice import selfservice_router
from commands import knowledge as kc
from commands import service as sc
from commands.case_links import status_link_for
from domain import knowledge as dk
from domain import service as ds
from domain.customer import Customer
from projections import registry
from projections.engine import Worker
from projections.knowledge.view import KnowledgeView
from tests.conftest import store_env
from tests.support.browser import Page, chromium_missing, chromium_page, live_server
from tests.support.phone import app_with, provider
from touchstream.bootstrap import Dependencies, bootstrap
from touchstream.selfservice_routes import PublicArticles

pytestmark = pytest.mark.skipif(chromium_missing() is not None,
                                reason=chromium_missing() or "")
SECRET = "browser-test-secret-123"
HOSTILE = """Switch the boiler off, wait, then press **Reset**.

<script>window.__pwned = 1</script>
<img src=x onerror="window.__pwned = 2">

[Do not click](javascript:window.__pwned=3) · [Manual](https://example.org/manual.pdf)
"""


@dataclass(frozen=True)
class Site:
    base: str
    deps: Dependencies


def _catch_up(deps: Dependencies) -> None:
    db, source = deps.read_store.connect(), deps.event_source()
    try:
        Worker(db, source, [(registry.get("knowledge"), None)]).catch_up()
    finally:
        source.close()
        db.close()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    deps = bootstrap(store_env("sqlite", tmp_path_factory.mktemp("browser") / "data"))
    forms = FormsConfig(secret=SECRET, default_region="GB", min_fill_s=1.0)
    # the help pages' own fill time is short: the forms test proves the guard itself
    help_forms = FormsConfig(secret=SECRET, default_region="GB", min_fill_s=0.2)
    articles = PublicArticles(deps.read_store)
    app = app_with(selfservice_router(provider(deps.hub), help_forms, lambda: articles),
                   forms_router(provider(deps.hub), forms))
    try:
        with live_server(app) as base:
            yield Site(base, deps)
    finally:
        deps.close()


@pytest.fixture(scope="module")
def page() -> Iterator[Page]:
    with chromium_page() as found:
        yield found


def _click(page: Page, selector: str) -> None:
    page.evaluate(f"document.querySelector({selector!r}).click()")
    page.wait_for("Page.loadEventFired")


def test_person_in_a_browser_submits_the_contact_form_and_it_lands_on_the_customer(
    site: Site, page: Page,
) -> None:
    base, hub = site.base, site.deps.hub
    page.navigate(f"{base}/forms/contact")
    assert page.evaluate("document.querySelector('h1').textContent") == "Contact us"
    # Submitting empty first: the errors come back next to the fields.
    time.sleep(1.1)  # the form refuses submissions faster than its minimum fill time
    _click(page, "button[type=submit]")
    assert page.evaluate(
        "document.getElementById('field-email').getAttribute('aria-invalid')") == "true"
    assert "Enter your email address" in page.evaluate(
        "document.getElementById('field-email-error').textContent")
    page.type_into("#field-name", "Grace Hopper")
    page.type_into("#field-email", "grace@example.com")
    page.type_into("#field-phone", "020 7946 0123")
    page.type_into("#field-message", "My invoice is wrong.")
    time.sleep(1.1)  # the re-rendered form carries a fresh render time
    _click(page, "button[type=submit]")
    assert page.evaluate("document.querySelector('h1').textContent") == "Thank you"
    reference = page.evaluate("document.querySelector('strong').textContent")
    customer = hub.find_by_contact("email", "grace@example.com")
    assert customer is not None
    (event,) = [e for e in hub.stream(customer) if isinstance(e, Customer.WebFormSubmitted)]
    assert event.submission_id == reference
    assert event.fields["message"] == "My invoice is wrong."
    assert event.fields["phone"] == "+442079460123"
    assert event.page_url == f"{base}/forms/contact"


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def test_self_service_search_read_ask_then_follow_the_case_by_its_signed_link(
    site: Site, page: Page,
) -> None:
    base, hub = site.base, site.deps.hub
    boiler = UUID(hub.execute(kc.CreateArticle(
        title="Resetting the boiler", body=HOSTILE, tags=["boiler"], visibility="public",
        source_key="browser-kb-1")).customer_id)
    internal = UUID(hub.execute(kc.CreateArticle(
        title="Boiler refunds (staff only)", body="Approve up to 500.",
        source_key="browser-kb-2")).customer_id)
    for article in (boiler, internal):
        hub.execute(kc.PublishArticle(article_id=article))
    _catch_up(site.deps)

    page.navigate(f"{base}/help?q=boiler")
    assert page.evaluate("[...document.querySelectorAll('ul a')].map(a => a.textContent)") == [
        "Resetting the boiler"]  # the internal article is not public
    assert page.axe() == []
    _click(page, "ul a")
    assert page.evaluate("document.querySelector('article h1').textContent") == (
        "Resetting the boiler")
    # hostile Markdown: shown as text, nothing ran, no handler or script URL in the DOM
    assert page.evaluate("typeof window.__pwned") == "undefined"
    assert page.evaluate("document.querySelectorAll('script, [onerror], [onload], "
                         "a[href^=\"javascript\" i]').length") == 0
    assert "<script>window.__pwned = 1</script>" in page.evaluate(
        "document.querySelector('article').textContent")
    assert page.evaluate("document.querySelector('article a').href") == (
        "https://example.org/manual.pdf")
    assert page.axe() == []

    _click(page, "#need-help")
    assert "Resetting the boiler" in page.evaluate(
        "document.getElementById('about-article').textContent")
    assert page.axe() == []
    page.type_into("#field-name", "Ada Lovelace")
    page.type_into("#field-email", "ada@example.com")
    page.type_into("#field-product", "Boiler S")
    page.evaluate("document.getElementById('field-urgency').value = 'high'")
    page.type_into("#field-description", "It still shows error E1 after the reset.")
    time.sleep(0.25)
    _click(page, "button[type=submit]")
    assert page.evaluate("document.querySelector('h1').textContent") == "Thank you"
    case_id = UUID(page.evaluate("document.getElementById('case-id').textContent"))

    customer = hub.find_by_contact("email", "ada@example.com")
    assert customer is not None
    stream = list(hub.stream(customer))
    (form,) = [e for e in stream if isinstance(e, Customer.WebFormSubmitted)]
    assert form.fields["article_id"] == str(boiler)
    (opened,) = [e for e in stream if isinstance(e, ds.CaseOpened)]
    assert (opened.case_id, opened.origin_event_id) == (str(case_id), str(form.event_id))
    (link,) = [e for e in stream if isinstance(e, dk.CaseArticleLinked)]
    assert (link.article_id, link.relation) == (str(boiler), "asked-after")
    assert link.view_id is not None

    # staff answer (shared) and note (internal); the customer follows the signed link
    hub.execute(sc.AddCaseNote(customer_id=customer, case_id=case_id, visibility="shared",
                               text="Please send a photo of the display."))
    hub.execute(sc.AddCaseNote(customer_id=customer, case_id=case_id, visibility="internal",
                               text="INTERNAL: probably the pump."))
    hub.execute(sc.WaitOnCustomer(customer_id=customer, case_id=case_id))
    now = datetime.now(UTC)
    link_url = status_link_for(SECRET, case_id, customer, now, base_url=base)
    page.navigate(link_url)
    assert "Waiting for your answer" in page.evaluate(
        "document.getElementById('case-status').textContent")
    thread = page.evaluate("document.getElementById('thread').textContent")
    assert "error E1" in thread and "photo of the display" in thread
    assert "INTERNAL" not in page.evaluate("document.body.textContent")
    assert page.axe() == []
    page.type_into("#field-message", "Photo attached to my email; display shows E1.")
    time.sleep(0.25)
    _click(page, "button[type=submit]")
    assert "display shows E1" in page.evaluate(
        "document.getElementById('thread').textContent")
    assert "Open" in page.evaluate("document.getElementById('case-status').textContent")
    replies = [e for e in hub.stream(customer) if isinstance(e, Customer.WebFormSubmitted)
               and e.form_name == "case-reply"]
    assert len(replies) == 1 and replies[0].direction == "inbound"
    assert str(replies[0].event_id) in hub.customer(customer).area("service")["cases"][
        str(case_id)]["touchpoints"]

    # a changed link is refused (403), an old one has expired (410)
    token = link_url.rsplit("/", 1)[1]
    assert _status(f"{base}/help/cases/{token[:-3]}AAA") == 403
    old = status_link_for(SECRET, case_id, customer, now - timedelta(days=2), base_url=base,
                          ttl_s=3600)
    assert _status(old) == 410

    # the view that led to this case is not deflected; the figure counts it once the window
    # has closed
    _catch_up(site.deps)
    figure = KnowledgeView(site.deps.read_store).deflection(now + timedelta(days=8), days=7)
    assert (figure["views"], figure["led_to_case"], figure["deflected"]) == (1, 1, 0)
