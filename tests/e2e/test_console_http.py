"""The staff console over HTTP: sessions (cookie flags, no fixation, sign-out, revoked
keys), CSRF on every form, security headers, escaping of hostile data, partner scope,
the read audit, roles and idempotent actions. The browser drives the same pages in
``tests/integration/test_console_in_browser.py``."""

from __future__ import annotations

import html
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID, uuid4

import httpx
import pytest
from fastapi.testclient import TestClient
from markupsafe import escape

from commands import accounts as ac
from projections.store import ReadStore
from tests.support.business import HOSTILE_TITLE, Business, seed_business, wait_for_business
from tests.support.console import (
    HOSTILE_BODY,
    HOSTILE_NAME,
    HOSTILE_SUBJECT,
    ConsoleHub,
    console_hub,
)
from touchstream.console.sessions import COOKIE, SessionStore


@pytest.fixture(scope="module")
def ch(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConsoleHub]:
    with console_hub(tmp_path_factory.mktemp("console") / "data", timeline_events=40) as built:
        yield built


def client(ch: ConsoleHub, https: bool = False) -> TestClient:
    return TestClient(ch.app, base_url="https://testserver" if https else "http://testserver",
                      follow_redirects=False)


def sign_in(c: TestClient, token: str) -> httpx.Response:
    page = c.get("/console/sign-in")
    signin = re.search(r'name="signin_token" value="([^"]+)"', page.text)
    assert signin is not None
    return c.post("/console/sign-in", data={"signin_token": signin.group(1), "api_key": token})


def signed_in(ch: ConsoleHub, role: str = "agent") -> tuple[TestClient, str]:
    """A client signed in as ``role`` and its CSRF token."""
    c = client(ch)
    assert sign_in(c, ch.tokens[role]).status_code == 303
    page = c.get("/console")
    assert page.status_code == 200
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert found is not None, page.text[:2000]
    return c, found.group(1)


def timeline_size(ch: ConsoleHub, customer_id: str) -> int:
    return len(list(ch.hub.stream(UUID(customer_id))))


def test_pages_need_a_session_and_sign_in_redirects(ch: ConsoleHub) -> None:
    c = client(ch)
    assert c.get("/").headers["location"] == "/console"
    for path in ("/console", f"/console/customers/{ch.demo.ada}", "/console/screen-pop",
                 "/console/admin/status"):
        r = c.get(path)
        assert (r.status_code, r.headers["location"]) == (303, "/console/sign-in"), path
    r = c.get("/console/search?q=ada", headers={"HX-Request": "true"})
    assert r.headers["HX-Redirect"] == "/console/sign-in"


def test_session_cookie_is_httponly_lax_and_secure_over_https(ch: ConsoleHub) -> None:
    plain = sign_in(client(ch), ch.tokens["agent"]).headers["set-cookie"].lower()
    assert "httponly" in plain and "samesite=lax" in plain and "secure" not in plain.split(
        COOKIE)[1].split(",")[0]
    secured = sign_in(client(ch, https=True), ch.tokens["agent"]).headers["set-cookie"]
    cookie = next(p for p in secured.split(", ") if p.startswith(COOKIE))
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie


def test_wrong_revoked_and_adapter_keys_do_not_sign_in(ch: ConsoleHub) -> None:
    c = client(ch)
    r = sign_in(c, "not-a-key")
    assert r.status_code == 401 and "unknown or has been revoked" in r.text
    assert COOKIE + "=" not in r.headers.get("set-cookie", "")
    assert sign_in(c, ch.tokens["adapter"]).status_code == 403
    # a sign-in form posted from elsewhere (no matching pre-session token) is refused
    r = c.post("/console/sign-in", data={"signin_token": "forged", "api_key": ch.tokens["admin"]})
    assert r.status_code == 403 and COOKIE + "=" not in r.headers.get("set-cookie", "")


def session_of(response: httpx.Response) -> str:
    found = re.search(COOKIE + r"=([^;]+);", response.headers["set-cookie"])
    assert found is not None
    return found.group(1)


def with_session(ch: ConsoleHub, session_id: str) -> TestClient:
    c = client(ch)
    c.cookies.set(COOKIE, session_id)
    return c


def test_sign_in_rotates_the_session_id_so_a_fixed_one_is_never_promoted(
        ch: ConsoleHub) -> None:
    fixed = "attacker-chosen-session-id"
    victim = with_session(ch, fixed)
    first = session_of(sign_in(victim, ch.tokens["agent"]))
    assert first != fixed
    assert with_session(ch, fixed).get("/console").status_code == 303
    assert with_session(ch, first).get("/console").status_code == 200
    # signing in again (as someone else) from that browser ends the earlier session
    second = session_of(sign_in(with_session(ch, first), ch.tokens["service"]))
    assert second != first
    assert with_session(ch, first).get("/console").status_code == 303
    assert "service-person" in with_session(ch, second).get("/console").text


def test_sign_out_ends_the_session_and_needs_the_csrf_token(ch: ConsoleHub) -> None:
    c, csrf = signed_in(ch)
    cookie = c.cookies.get(COOKIE)
    assert c.post("/console/sign-out").status_code == 403  # no token
    assert c.get("/console").status_code == 200
    r = c.post("/console/sign-out", data={"csrf": csrf})
    assert (r.status_code, r.headers["location"]) == (303, "/console/sign-in")
    again = client(ch)
    again.cookies.set(COOKIE, cookie or "")
    assert again.get("/console").status_code == 303


def test_revoking_the_key_ends_its_console_sessions(ch: ConsoleHub) -> None:
    key, token = ch.keys.create("agent", None, "short-lived")
    c = client(ch)
    sign_in(c, token)
    assert c.get("/console").status_code == 200
    ch.keys.revoke(key.id)
    assert c.get("/console").status_code == 303


def test_idle_sessions_expire(tmp_path: Path) -> None:
    now = [1000.0]
    store = SessionStore(tmp_path / "s.db", idle_s=60, clock=lambda: now[0])
    sid = store.start("key-1")
    now[0] += 59
    assert store.get(sid) is not None
    now[0] += 59  # used 59 s ago: still alive (last use is noted every 30 s)
    assert store.get(sid) is not None
    now[0] += 61
    assert store.get(sid) is None and store.count() == 0
    store.close()


def test_every_form_post_needs_the_sessions_csrf_token(ch: ConsoleHub) -> None:
    c, csrf = signed_in(ch)
    before = timeline_size(ch, ch.demo.ada)
    route = f"/console/customers/{ch.demo.ada}/notes"
    body = {"idem": "1" * 32, "text": "forged"}
    assert c.post(route, data=body).status_code == 403
    assert c.post(route, data=body, headers={"X-CSRF-Token": "x" * 43}).status_code == 403
    _other, other_csrf = signed_in(ch)  # another session's token is not this one's
    assert c.post(route, data=body, headers={"X-CSRF-Token": other_csrf}).status_code == 403
    r = c.post(route, data=body, headers={"X-CSRF-Token": csrf,
                                          "Origin": "https://evil.example"})
    assert r.status_code == 403
    for path in ("calls", "visits", "callbacks", "stage", "merge", "unmerge"):
        assert c.post(f"/console/customers/{ch.demo.ada}/{path}",
                      data={"idem": "2" * 32}).status_code == 403, path
    assert c.post("/console/prospects", data={"number": "+442079460999"}).status_code == 403
    assert timeline_size(ch, ch.demo.ada) == before
    ok = c.post(route, data=body, headers={"X-CSRF-Token": csrf, "HX-Request": "true"})
    assert ok.status_code == 200 and "forged" in ok.text


def test_a_resent_form_records_one_note(ch: ConsoleHub) -> None:
    c, csrf = signed_in(ch)
    before = timeline_size(ch, ch.demo.ada)
    body = {"idem": "3" * 32, "text": "Called back, all sorted", "visibility": "shared"}
    headers = {"X-CSRF-Token": csrf, "HX-Request": "true"}
    first = c.post(f"/console/customers/{ch.demo.ada}/notes", data=body, headers=headers)
    again = c.post(f"/console/customers/{ch.demo.ada}/notes", data=body, headers=headers)
    assert first.status_code == again.status_code == 200
    assert "Called back, all sorted" in first.text and "Note added." in first.text
    assert "Already recorded" in again.text
    assert timeline_size(ch, ch.demo.ada) == before + 1


def test_every_console_page_has_the_security_headers(ch: ConsoleHub) -> None:
    c, _ = signed_in(ch, "admin")
    event = ch.deps.read_views.timeline.page(ch.demo.ada, limit=1).items[0]["event_id"]
    for path in ("/console/sign-in", "/console", "/console/search?q=ada",
                 f"/console/customers/{ch.demo.ada}",
                 f"/console/customers/{ch.demo.ada}/timeline?channel=email",
                 f"/console/events/{event}", "/console/screen-pop", "/console/admin/status",
                 f"/console/customers/{ch.demo.ada}/merge?other=ada",
                 "/console/customers/00000000-0000-0000-0000-000000000000"):
        r = c.get(path)
        csp = r.headers.get("content-security-policy", "")
        assert "script-src 'self'" in csp and "default-src 'none'" in csp, path
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp, path
        assert r.headers["x-content-type-options"] == "nosniff", path
        assert r.headers["x-frame-options"] == "DENY", path
        assert "<script>" not in r.text.replace(
            '<script src="/console/static/htmx.min.js" defer></script>', ""), path


def test_hostile_names_subjects_and_html_mail_are_escaped(ch: ConsoleHub) -> None:
    c, _ = signed_in(ch)
    page = c.get(f"/console/customers/{ch.demo.hostile}").text
    search = c.get("/console/search", params={"q": "mallory"}).text
    ada = c.get(f"/console/customers/{ch.demo.ada}").text
    html_mail = next(i for i in ch.deps.read_views.timeline.page(ch.demo.ada, limit=5).items
                     if i["subject"] == HOSTILE_SUBJECT)
    detail = c.get(f"/console/events/{html_mail['event_id']}").text
    hostile_items = ch.deps.read_views.timeline.page(ch.demo.hostile).items
    details = [c.get(f"/console/events/{i['event_id']}").text for i in hostile_items]
    call = next(c.get(f"/console/events/{i['event_id']}").text for i in hostile_items
                if i["kind"] == "call")
    assert "Recording</a>" not in call and "javascript:alert(3)" not in call
    for text in (page, search, ada, detail, *details):
        scripts = re.findall(r"<script[^>]*>", text)
        assert all('src="/console/static/' in s for s in scripts), scripts
        assert "<img" not in text and "<iframe" not in text
        assert 'href="javascript:' not in text and "onerror=" not in text.replace(
            "onerror=alert", "")
    assert str(escape(HOSTILE_NAME)) in page
    assert str(escape(HOSTILE_SUBJECT)) in ada
    assert str(escape(HOSTILE_BODY)) in detail  # the mail's HTML shown as text, never run
    assert "javascript:alert(1)" in page  # the company, as text only


def test_a_partner_sees_only_its_customers_and_no_internal_notes(ch: ConsoleHub) -> None:
    c, _ = signed_in(ch, "partner")
    assert "Ada Lovelace" not in c.get("/console/search", params={"q": "ada"}).text
    assert c.get(f"/console/customers/{ch.demo.ada}").status_code == 404
    assert c.get(f"/console/customers/{ch.demo.ada}/timeline").status_code == 404
    ada_event = ch.deps.read_views.timeline.page(ch.demo.ada, limit=1).items[0]["event_id"]
    assert c.get(f"/console/events/{ada_event}").status_code == 404
    assert "Pat Partnered" in c.get("/console/search", params={"q": "pat"}).text
    pat = c.get(f"/console/customers/{ch.demo.partnered}").text
    assert "Pat Partnered" in pat and "Internal about Pat" not in pat
    assert 'id="note-form"' not in pat  # partners do not act
    internal = next(i for i in ch.deps.read_views.timeline.page(ch.demo.partnered).items
                    if i["internal"])
    assert c.get(f"/console/events/{internal['event_id']}").status_code == 404


def test_roles_decide_what_a_person_may_read_and_do(ch: ConsoleHub) -> None:
    analyst, _ = signed_in(ch, "analyst")
    assert analyst.get(f"/console/customers/{ch.demo.ada}").status_code == 403
    assert analyst.get("/console/admin/status").status_code == 200
    agent, csrf = signed_in(ch, "agent")
    assert agent.get("/console/admin/status").status_code == 403
    r = agent.post(f"/console/customers/{ch.demo.ada}/stage",
                   data={"idem": "4" * 32, "to_stage": "lost"}, headers={"X-CSRF-Token": csrf})
    assert r.status_code == 403  # lifecycle changes are sales/marketing/service
    marketing, _ = signed_in(ch, "marketing")
    page = marketing.get(f"/console/customers/{ch.demo.ada}").text
    assert "Ada Lovelace" in page and "sees this customer's summary, not the timeline" in page


def test_console_reads_are_in_the_read_audit(ch: ConsoleHub) -> None:
    c, _ = signed_in(ch, "dispatcher")
    assert c.get(f"/console/customers/{ch.demo.duplicate}").status_code == 200
    api = client(ch)
    log = api.get(f"/customers/{ch.demo.duplicate}/access-log",
                  headers={"Authorization": f"Bearer {ch.tokens['auditor']}"}).json()
    mine = [r for r in log if r["role"] == "dispatcher"]
    assert [r["route"] for r in mine] == ["GET /console/customers/{customer_id}"]


def test_timeline_filters_and_pages_follow_the_cursor(ch: ConsoleHub) -> None:
    c, _ = signed_in(ch)
    first = c.get(f"/console/customers/{ch.demo.ada}/timeline?channel=email")
    kinds = set(re.findall(r'data-channel="([a-z]+)"', first.text))
    assert kinds == {"email"}
    assert c.get(f"/console/customers/{ch.demo.ada}/timeline?channel=pigeon").status_code == 400
    seen = 0
    url: str | None = f"/console/customers/{ch.demo.ada}/timeline"
    while url:
        page = c.get(html.unescape(url))
        assert page.status_code == 200
        seen += page.text.count('<li class="row')
        more = re.search(r'<li class="more" hx-get="([^"]+)"', page.text)
        url = more.group(1) if more else None
    assert seen == timeline_size(ch, ch.demo.ada)
    bad = c.get(f"/console/customers/{ch.demo.duplicate}/timeline?cursor=abc")
    assert bad.status_code == 400


def test_a_page_whose_read_cannot_be_recorded_shows_nothing(ch: ConsoleHub) -> None:
    c, csrf = signed_in(ch)
    event = ch.deps.read_views.timeline.page(ch.demo.ada, limit=1).items[0]["event_id"]
    db = ReadStore(ch.deps.settings.read_store).connect()
    db.execute("CREATE TRIGGER audit.console_audit_down BEFORE INSERT ON audit_access "
               "BEGIN SELECT RAISE(ABORT, 'audit store down'); END")
    try:
        for path in (f"/console/customers/{ch.demo.ada}",
                     f"/console/customers/{ch.demo.ada}/timeline", f"/console/events/{event}"):
            r = c.get(path)
            assert r.status_code == 503, path
            assert "access log" in r.text and "Ada Lovelace" not in r.text, path
        noted = c.post(f"/console/customers/{ch.demo.ada}/notes",
                       data={"idem": "5" * 32, "text": "written, not shown"},
                       headers={"X-CSRF-Token": csrf, "HX-Request": "true"})
        assert noted.status_code == 503 and "Ada Lovelace" not in noted.text
    finally:
        db.execute("DROP TRIGGER console_audit_down")
        db.close()


@pytest.fixture(scope="module")
def bea(ch: ConsoleHub) -> Business:
    """A customer with every area's objects (sales, consent, cases, work orders)."""
    found = seed_business(ch.hub)
    wait_for_business(ch.deps.read_views.store, int(ch.hub.recorder.max_notification_id() or 0))
    ch.wait_for_read_models()
    return found


def panels_of(page: str) -> set[str]:
    return set(re.findall(r'id="panel-(sales|consent|service|dispatch|contracts)"', page))


@pytest.mark.parametrize(("role", "panels"), [
    ("admin", {"sales", "consent", "service", "dispatch", "contracts"}),
    ("sales", {"sales", "consent", "service"}),
    ("marketing", {"consent", "service"}),
    ("agent", {"consent", "service", "dispatch", "contracts"}),
    ("dispatcher", {"service", "dispatch", "contracts"}),
    ("auditor", {"service"}),
])
def test_business_panels_show_to_the_roles_that_read_each_area(
        ch: ConsoleHub, bea: Business, role: str, panels: set[str]) -> None:
    c, _ = signed_in(ch, role)
    page = c.get(f"/console/customers/{bea.customer_id}")
    assert page.status_code == 200
    assert panels_of(page.text) == panels


def panel(page: str, name: str) -> str:
    start = page.index(f'id="panel-{name}"')
    return page[start:page.index("</div>", start)]


def test_business_panels_show_the_objects_escaped(ch: ConsoleHub, bea: Business) -> None:
    c, _ = signed_in(ch, "admin")
    page = c.get(f"/console/customers/{bea.customer_id}").text
    assert HOSTILE_TITLE not in page
    sales = panel(page, "sales")
    assert str(escape(HOSTILE_TITLE)) in sales and "12500.00 EUR" in sales
    assert "1 open opportunity · 2 orders" in sales and "BIZ-1002" in sales
    assert "Spare parts" not in sales  # lost: not an open opportunity
    assert re.search(r'<th scope="row">email</th><td>newsletter</td><td>given',
                     panel(page, "consent"))
    cases = panel(page, "service")
    assert "<i>Boiler</i>" not in page and "&lt;i&gt;Boiler&lt;/i&gt; leaks" in cases
    assert "1 open of 2" in cases and "Invoice question" not in cases  # the closed case
    work = panel(page, "dispatch")
    assert "Leak under the boiler" in work and "not booked" in work
    contracts = panel(page, "contracts")
    assert "1 in force, 1 installed product" in contracts and bea.contract in contracts
    assert bea.old_contract not in contracts and "BOILER-S" in contracts
    # the timeline names the business objects too
    assert "email consent: newsletter" in page and "order BIZ-1002" in page
    # a customer without business objects shows the panels empty, not missing
    plain = c.get(f"/console/customers/{ch.demo.duplicate}").text
    assert panels_of(plain) == {"sales", "consent", "service", "dispatch", "contracts"}
    assert "0 open opportunities · 0 orders" in plain and "None recorded." in plain


@pytest.fixture(scope="module")
def acme(ch: ConsoleHub) -> dict[str, str]:
    """An account (with a parent) that Ada acts for; her events roll up into its timeline."""
    group = ch.hub.execute(ac.OpenAccount(name="Acme Group plc", source_key="console:group"))
    opened = ch.hub.execute(ac.OpenAccount(name="Acme <b>Ltd</b>", owner="mia",
                                           source_key="console:acme"))
    ch.hub.execute(ac.SetAccountParent(account_id=UUID(opened.customer_id),
                                       parent_id=UUID(group.customer_id)))
    ch.hub.execute(ac.LinkContact(account_id=UUID(opened.customer_id),
                                  customer_id=UUID(ch.demo.ada), role="buyer",
                                  joined_at=datetime(2000, 1, 1, tzinfo=UTC)))
    ch.wait_for_read_models()
    view = ch.deps.read_views.accounts
    deadline = time.monotonic() + 20
    while view.position() < int(ch.hub.recorder.max_notification_id() or 0):
        assert time.monotonic() < deadline, "the accounts read model did not catch up"
        time.sleep(0.01)
    return {"account": opened.customer_id, "group": group.customer_id}


def test_account_page_lists_contacts_and_links_the_rolled_up_timeline(
        ch: ConsoleHub, acme: dict[str, str]) -> None:
    c, _ = signed_in(ch, "sales")
    person = c.get(f"/console/customers/{ch.demo.ada}").text
    accounts = panel(person, "accounts")
    assert f'/console/accounts/{acme["account"]}' in accounts and "buyer" in accounts
    page = c.get(f"/console/accounts/{acme['account']}")
    assert page.status_code == 200
    assert "Acme <b>" not in page.text and "Acme &lt;b&gt;Ltd&lt;/b&gt;" in page.text
    contacts = panel(page.text, "contacts")
    assert f'/console/customers/{ch.demo.ada}' in contacts and "Ada Lovelace" in contacts
    assert f'/console/accounts/{acme["group"]}' in page.text  # the parent, linked
    assert f'/console/accounts/{acme["account"]}/timeline' in page.text
    rolled = c.get(f"/console/accounts/{acme['account']}/timeline")
    assert rolled.status_code == 200
    assert rolled.text.count(f'/console/customers/{ch.demo.ada}') >= 2  # her events
    assert "account opened" in rolled.text
    partner_client, _ = signed_in(ch, "partner")
    assert partner_client.get(f"/console/accounts/{acme['account']}").status_code == 404
    assert c.get(f"/console/accounts/{uuid4()}").status_code == 404
    assert c.get(f"/console/accounts/{acme['account']}/timeline",
                 params={"cursor": "forged"}).status_code == 400
