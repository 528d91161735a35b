"""The CSAT survey of a resolved case: a public form whose link is signed per case; the
answer lands on the case once; forged links, unresolved cases, bad scores are refused."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from uuid import UUID, uuid4

import pytest
from fastapi.testclient import TestClient

from channels.web.config import FormsConfig
from channels.web.forms import forms_router
from channels.web.survey import survey_link, survey_router
from commands import messages as m
from commands import service as sc
from commands.hub import Hub
from domain.service import CaseSatisfactionRecorded
from tests.support.phone import app_with, provider, sqlite_hub

SECRET = "forms-secret-of-enough-length"


class Clock:
    def __init__(self) -> None:
        self.now = 1_790_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[Hub, TestClient, Clock]]:
    hub = sqlite_hub(tmp_path)
    clock = Clock()
    config = FormsConfig(secret=SECRET, clock=clock)
    with TestClient(app_with(survey_router(provider(hub), config),
                             forms_router(provider(hub), config))) as client:
        yield hub, client, clock
    hub.close()


def token(client: TestClient, clock: Clock, link: str) -> str:
    page = client.get(link)
    assert page.status_code == 200, page.text
    assert 'name="score"' in page.text and 'name="comment"' in page.text
    found = re.search(r'name="_token" value="([^"]+)"', page.text)
    assert found
    clock.now += 5
    return found.group(1)


def test_a_resolved_case_gets_one_answer_through_its_signed_link(
        world: tuple[Hub, TestClient, Clock]) -> None:
    hub, client, clock = world
    cid = UUID(hub.execute(m.RegisterCustomer(name="Ada", source_key="r")).customer_id)
    case = uuid4()
    hub.execute(sc.OpenCase(customer_id=cid, case_id=case, category="repair", subject="x"))
    link = survey_link(SECRET, cid, case)

    early = client.post(link, data={"_token": token(client, clock, link), "score": "5"})
    assert early.status_code == 409 and "cannot record satisfaction" in early.text
    hub.execute(sc.ResolveCase(customer_id=cid, case_id=case, resolution_code="fixed"))

    bad = client.post(link, data={"_token": token(client, clock, link), "score": "9"})
    assert bad.status_code == 422 and "rating from 1 to 5" in bad.text
    sent = {"_token": token(client, clock, link), "score": "4", "comment": "Quick fix"}
    assert client.post(link, data=sent).status_code == 201
    assert client.post(link, data=sent).status_code == 200  # a double submit: once
    again = client.post(link, data={"_token": token(client, clock, link), "score": "1"})
    assert again.status_code in (200, 409)
    answers = [e for e in hub.stream(cid) if isinstance(e, CaseSatisfactionRecorded)]
    assert [(a.score, a.comment) for a in answers] == [(4, "Quick fix")]


def test_forged_links_bots_and_fast_fills_are_refused(
        world: tuple[Hub, TestClient, Clock]) -> None:
    _, client, clock = world
    cid, case = uuid4(), uuid4()
    link = survey_link(SECRET, cid, case)
    other = survey_link(SECRET, cid, uuid4())
    forged = link.rsplit(".", 1)[0] + "." + other.rsplit(".", 1)[1]
    assert client.get(forged).status_code == 404
    assert client.get("/forms/survey/nonsense").status_code == 404
    fast = token(client, clock, link)
    clock.now -= 5
    assert client.post(link, data={"_token": fast, "score": "5"}).status_code == 400
    bot = client.post(link, data={"_token": token(client, clock, link), "score": "5",
                                  "website": "http://spam.example"})
    assert bot.status_code == 400
    unknown = client.post(link, data={"_token": token(client, clock, link), "score": "5"})
    assert unknown.status_code == 404  # a valid link for a customer that does not exist
