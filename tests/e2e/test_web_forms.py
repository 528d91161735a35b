"""Public web forms: accessible rendering, abuse guards, strict validation, one event per token."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode
from uuid import UUID

import pytest
from fastapi.testclient import TestClient

from channels.web.config import DEFAULT_FORMS, FieldSpec, FormConfigError, FormsConfig, FormSpec
from channels.web.forms import forms_router
from commands import messages as m
from commands.hub import Hub
from domain.customer import Customer
from tests.support.phone import app_with, provider, sqlite_hub

SECRET = "forms-secret-of-enough-length"


class Clock:
    def __init__(self) -> None:
        self.now = 1_790_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[Hub]:
    h = sqlite_hub(tmp_path)
    yield h
    h.close()


@pytest.fixture
def clock() -> Clock:
    return Clock()


def make_client(hub: Hub, clock: Clock, **kw: object) -> TestClient:
    config = FormsConfig(secret=SECRET, default_region="GB", clock=clock, **kw)  # type: ignore[arg-type]
    return TestClient(app_with(forms_router(provider(hub), config)))


@pytest.fixture
def client(hub: Hub, clock: Clock) -> Iterator[TestClient]:
    with make_client(hub, clock) as c:
        yield c


def token_of(html: str) -> str:
    match = re.search(r'name="_token" value="([^"]+)"', html)
    assert match, "no token in the form"
    return match.group(1)


def fresh_token(client: TestClient, clock: Clock, form: str = "contact") -> str:
    token = token_of(client.get(f"/forms/{form}").text)
    clock.now += 5  # a person takes a few seconds
    return token


CONTACT = {"name": "Ada Lovelace", "email": "Ada@Example.com", "message": "Please call me back."}


def post_form(client: TestClient, data: dict[str, str], form: str = "contact"):  # type: ignore[no-untyped-def]
    return client.post(f"/forms/{form}", content=urlencode(data),
                       headers={"Content-Type": "application/x-www-form-urlencoded"})


def submissions(hub: Hub, email: str = "ada@example.com") -> list[Customer.WebFormSubmitted]:
    cid = hub.find_by_contact("email", email)
    if cid is None:
        return []
    return [e for e in hub.stream(cid) if isinstance(e, Customer.WebFormSubmitted)]


@pytest.mark.parametrize("name", sorted(DEFAULT_FORMS))
def test_every_default_form_renders_accessible_html(client: TestClient, name: str) -> None:
    r = client.get(f"/forms/{name}")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    html = r.text
    assert '<html lang="en">' in html and "<h1>" in html
    for f in DEFAULT_FORMS[name].fields:
        assert f'<label for="field-{f.name}">' in html and f'id="field-{f.name}"' in html
    assert 'aria-required="true"' in html
    assert r.headers["cache-control"] == "no-store"


def test_unknown_form_is_404(client: TestClient) -> None:
    assert client.get("/forms/nonsense").status_code == 404


def test_valid_submission_becomes_a_web_form_event_on_a_new_customer(
    client: TestClient, clock: Clock, hub: Hub
) -> None:
    r = post_form(client, {**CONTACT, "_token": fresh_token(client, clock), "website": ""})
    assert r.status_code == 201 and "Thank you" in r.text
    (event,) = submissions(hub)
    assert event.form_name == "contact" and event.channel == "web"
    assert event.fields == {"name": "Ada Lovelace", "email": "ada@example.com",
                            "message": "Please call me back."}


def test_submission_lands_on_the_customer_matching_the_email(
    client: TestClient, clock: Clock, hub: Hub
) -> None:
    existing = hub.execute(m.RegisterCustomer(
        name="Ada", source_key="reg:ada",
        contact_points=[m.ContactPointIn(kind="email", value="ada@example.com")])).customer_id
    post_form(client, {**CONTACT, "_token": fresh_token(client, clock)})
    assert str(hub.find_by_contact("email", "ada@example.com")) == existing
    assert len(submissions(hub)) == 1


def test_json_submission_is_accepted(client: TestClient, clock: Clock, hub: Hub) -> None:
    r = client.post("/forms/contact", json={**CONTACT, "_token": fresh_token(client, clock)})
    assert r.status_code == 201 and r.json()["status"] == "recorded"
    assert len(submissions(hub)) == 1


def test_double_submit_or_replayed_token_records_one_event(
    client: TestClient, clock: Clock, hub: Hub
) -> None:
    data = {**CONTACT, "_token": fresh_token(client, clock)}
    first, second = post_form(client, data), post_form(client, data)
    replay = client.post("/forms/contact", json={**data, "message": "changed"})
    assert (first.status_code, second.status_code, replay.status_code) == (201, 200, 200)
    assert replay.json()["status"] == "duplicate"
    (event,) = submissions(hub)
    assert event.fields["message"] == "Please call me back."


def test_filled_honeypot_is_refused_and_nothing_recorded(
    client: TestClient, clock: Clock, hub: Hub
) -> None:
    r = post_form(client, {**CONTACT, "_token": fresh_token(client, clock),
                           "website": "http://spam.example"})
    assert r.status_code == 400 and "automated" in r.text
    assert submissions(hub) == []


def test_submission_faster_than_a_person_is_refused_then_accepted_later(
    client: TestClient, clock: Clock, hub: Hub
) -> None:
    token = token_of(client.get("/forms/contact").text)
    clock.now += 1
    r = post_form(client, {**CONTACT, "_token": token})
    assert r.status_code == 400 and "quicker than a person" in r.text
    assert 'value="Ada Lovelace"' in r.text  # what they typed is kept
    assert submissions(hub) == []
    clock.now += 5
    assert post_form(client, {**CONTACT, "_token": token_of(r.text)}).status_code == 201


def test_forged_expired_or_missing_token_is_refused(
    client: TestClient, clock: Clock, hub: Hub
) -> None:
    token = fresh_token(client, clock)
    forged = token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB")
    assert post_form(client, {**CONTACT, "_token": forged}).status_code == 400
    assert post_form(client, CONTACT).status_code == 400
    other = fresh_token(client, clock, "feedback")
    assert "another form" in post_form(client, {**CONTACT, "_token": other}).text
    clock.now += 2 * 24 * 3600
    assert "expired" in post_form(client, {**CONTACT, "_token": token}).text
    assert submissions(hub) == []


def test_too_large_body_is_413_and_nothing_recorded(
    hub: Hub, clock: Clock
) -> None:
    with make_client(hub, clock, max_body_bytes=2048) as client:
        data = {**CONTACT, "message": "x" * 4000, "_token": fresh_token(client, clock)}
        r = post_form(client, data)
        assert r.status_code == 413
        chunked = client.post("/forms/contact", content=iter([b"a=" + b"x" * 1500] * 3),
                              headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert chunked.status_code == 413
    assert submissions(hub) == []


def test_rate_limited_client_gets_429_with_retry_after(hub: Hub, clock: Clock) -> None:
    with make_client(hub, clock, rate_limit=3) as client:
        codes = [post_form(client, {**CONTACT, "_token": fresh_token(client, clock)}).status_code
                 for _ in range(4)]
        assert codes[:3] == [201, 201, 201] and codes[3] == 429
        limited = post_form(client, CONTACT)
        assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1
        clock.now += 61
        assert post_form(client, {**CONTACT, "_token": fresh_token(client, clock)}
                         ).status_code == 201


def test_invalid_fields_are_re_rendered_with_messages_next_to_them(
    client: TestClient, clock: Clock, hub: Hub
) -> None:
    r = post_form(client, {"name": "", "email": "not-an-email", "phone": "12",
                           "message": "x" * 5001, "_token": fresh_token(client, clock)})
    assert r.status_code == 422
    html = r.text
    assert 'role="alert"' in html and "There is a problem" in html
    for name, words in [("name", "Enter your name"), ("email", "email address like"),
                        ("phone", "phone number like"), ("message", "at most 5000")]:
        error = re.search(rf'<p class="error" id="field-{name}-error">(.*?)</p>', html)
        assert error and words in error.group(1), name
        assert re.search(rf'id="field-{name}"[^>]*aria-invalid="true"', html)
        assert f'aria-describedby="field-{name}-error"' in html or \
            f'aria-describedby="field-{name}-hint field-{name}-error"' in html
    assert 'value="not-an-email"' in html
    assert submissions(hub) == []


def test_unknown_fields_are_refused(client: TestClient, clock: Clock, hub: Hub) -> None:
    r = client.post("/forms/contact", json={**CONTACT, "admin": "yes",
                                            "_token": fresh_token(client, clock)})
    assert r.status_code == 422 and "admin" in r.json()["errors"]
    assert submissions(hub) == []


def test_select_accepts_only_its_choices(client: TestClient, clock: Clock, hub: Hub) -> None:
    data = {"name": "Ada", "email": "ada@example.com", "rating": "11"}
    r = client.post("/forms/feedback", json={**data, "_token": fresh_token(client, clock,
                                                                            "feedback")})
    assert r.status_code == 422 and "choose one of" in r.json()["errors"]["rating"]
    ok = client.post("/forms/feedback", json={**data, "rating": "5",
                                              "_token": fresh_token(client, clock, "feedback")})
    assert ok.status_code == 201


def test_configured_form_fields_are_served_and_bad_configs_refused(
    hub: Hub, clock: Clock
) -> None:
    custom = FormSpec("callback", "Ask for a callback", (
        FieldSpec("phone", "Phone", kind="tel", required=True),
        FieldSpec("best_time", "Best time", kind="select", choices=("morning", "afternoon"))))
    with make_client(hub, clock, forms={"callback": custom}) as client:
        assert 'id="field-best_time"' in client.get("/forms/callback").text
        assert client.get("/forms/contact").status_code == 404
        r = client.post("/forms/callback", json={"phone": "020 7946 0018",
                                                 "_token": fresh_token(client, clock, "callback")})
        assert r.status_code == 201
    cid = hub.find_by_contact("phone", "+442079460018")
    assert cid is not None
    with pytest.raises(FormConfigError, match="email"):
        FormSpec("bad", "Bad", (FieldSpec("name", "Name"),))
    with pytest.raises(FormConfigError, match="secret"):
        FormsConfig(secret="short")


# -- issue 8: prospects take the submitted name and phone; NUL refused -----------------


def test_new_prospect_is_named_as_submitted_and_gets_the_phone_as_a_contact_point(
    client: TestClient, clock: Clock, hub: Hub
) -> None:
    data = {**CONTACT, "phone": "020 7946 0018", "_token": fresh_token(client, clock)}
    assert post_form(client, data).status_code == 201
    assert post_form(client, data).status_code == 200  # a double submit adds nothing
    cid = hub.find_by_contact("email", "ada@example.com")
    assert cid is not None and hub.find_by_contact("phone", "+442079460018") == cid
    customer = hub.customer(cid)
    assert customer.name == "Ada Lovelace"
    assert customer.contact_points == {"email": ["ada@example.com"], "phone": ["+442079460018"]}
    kinds = [type(e).__name__ for e in hub.stream(cid)]
    assert kinds.count("ProfileChanged") == 1 and kinds.count("ContactPointAdded") == 2


def test_a_known_customer_is_neither_renamed_nor_given_the_submitted_phone(
    client: TestClient, clock: Clock, hub: Hub
) -> None:
    cid = UUID(hub.execute(m.RegisterCustomer(
        name="Ada King", source_key="reg:ada",
        contact_points=[m.ContactPointIn(kind="email", value="ada@example.com")])).customer_id)
    data = {**CONTACT, "phone": "020 7946 0018", "_token": fresh_token(client, clock)}
    assert post_form(client, data).status_code == 201
    customer = hub.customer(cid)
    assert customer.name == "Ada King" and "phone" not in customer.contact_points
    assert hub.find_by_contact("phone", "+442079460018") is None
    assert submissions(hub)[0].fields["phone"] == "+442079460018"  # kept in the submission


def test_a_phone_owned_by_another_customer_stays_in_the_fields_only(
    client: TestClient, clock: Clock, hub: Hub
) -> None:
    bob = hub.execute(m.RegisterCustomer(
        name="Bob", source_key="reg:bob",
        contact_points=[m.ContactPointIn(kind="phone", value="+442079460018")])).customer_id
    data = {**CONTACT, "phone": "020 7946 0018", "_token": fresh_token(client, clock)}
    assert post_form(client, data).status_code == 201
    ada = hub.find_by_contact("email", "ada@example.com")
    assert ada is not None and hub.customer(ada).name == "Ada Lovelace"
    assert str(hub.find_by_contact("phone", "+442079460018")) == bob


@pytest.mark.parametrize("encoding", ["form", "json"])
def test_nul_characters_are_refused_with_a_reason_and_nothing_recorded(
    client: TestClient, clock: Clock, hub: Hub, encoding: str
) -> None:
    data = {**CONTACT, "message": "hello\x00world", "_token": fresh_token(client, clock)}
    r = (post_form(client, data) if encoding == "form"
         else client.post("/forms/contact", json=data))
    assert r.status_code == 422
    if encoding == "json":
        assert "NUL" in r.json()["errors"]["message"]
    else:
        assert "NUL character" in r.text
    assert submissions(hub) == [] and hub.find_by_contact("email", "ada@example.com") is None
