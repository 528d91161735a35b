"""Demo knowledge base: articles (public and internal, one revised after publishing, one
retired), self-service views over the last weeks before ``until``, a few of them followed
by a case opened through "still need help", and articles linked to resolved cases.

So the help centre has something to find, ``kb deflection`` has views that were and were
not deflected (and some still pending), and an article shows the cases it resolved. Pure
(no clock, no I/O): commands in recording order, deterministic by seed.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from uuid import NAMESPACE_URL, UUID, uuid5

from commands import knowledge as kc
from commands import messages as m
from commands import service as sc

ARTICLES = (
    ("Resetting the boiler after a power cut", "public", ["boiler", "power"],
     ("1. Switch the boiler **off** at the wall.\n2. Wait 30 seconds.\n"
     "3. Switch it on and hold *Reset* for 5 seconds.\n\nStill showing **E1**? Ask us.")),
    ("Bleeding a radiator", "public", ["heating", "radiator"],
     "Turn the heating off, open the valve with a radiator key until water comes, close it."),
    ("Reading your invoice", "public", ["billing", "invoice"],
     ("Your invoice lists the **period**, the meter readings and the tariff. "
     "See [our tariffs](https://www.example.org/tariffs).")),
    ("Changing your bank details", "public", ["billing", "account"],
     "Send us the new IBAN through the contact form; we confirm by letter."),
    ("Refund approvals over 500 EUR", "internal", ["billing", "refund"],
     "Refunds over 500 EUR need a manager's approval in the ERP before they are promised."),
    ("Escalating a gas smell report", "internal", ["safety"],
     "Never schedule: call the emergency line at once and note the case as critical."),
)
RETIRED = ("Faxing the meter reading", "public", ["meter"], "Fax it to us.")
VIEWS = 60  # views in all, spread over the public articles
ASKED = 5  # of them, followed by a case through "still need help"
RESOLVED_EVERY = 5  # one resolved case in five was resolved by an article


def _id(seed: int, *parts: object) -> UUID:
    return uuid5(NAMESPACE_URL, f"touchstream-demo-kb:{seed}:" + ":".join(map(str, parts)))


def knowledge_plan(planned: list[m.Command], seed: int, until: datetime) -> list[m.Command]:
    """The demo's knowledge commands, after everything ``planned`` (cases among it)."""
    rng = random.Random(f"touchstream-demo-kb:{seed}")
    out: list[m.Command] = []
    start = until - timedelta(days=90)
    ids = []
    for i, (title, visibility, tags, body) in enumerate((*ARTICLES, RETIRED)):
        aid = _id(seed, "article", i)
        ids.append(aid)
        out.append(kc.CreateArticle(article_id=aid, title=title, body=body, tags=tags,
                                    visibility=visibility,  # type: ignore[arg-type]
                                    occurred_at=start + timedelta(hours=i), actor="mia"))
        out.append(kc.PublishArticle(article_id=aid, occurred_at=start + timedelta(days=1),
                                     source_key=f"demo-kb:{seed}:publish:{i}", actor="mia"))
    # a revision after publishing (a draft until published again) and a retired article
    out.append(kc.ReviseArticle(article_id=ids[0], title=ARTICLES[0][0], tags=ARTICLES[0][2],
                                body=ARTICLES[0][3] + "\n\nModels from 2024: hold *Reset* "
                                "for 10 seconds.", visibility="public",
                                occurred_at=until - timedelta(days=2),
                                source_key=f"demo-kb:{seed}:revise:0", actor="jo"))
    out.append(kc.RetireArticle(article_id=ids[-1], reason_code="channel-closed",
                                occurred_at=start + timedelta(days=10), actor="mia"))
    public = [aid for aid, a in zip(ids, ARTICLES, strict=False) if a[1] == "public"]
    views = []
    for n in range(VIEWS):
        aid = rng.choice(public)
        at = until - timedelta(days=60) + timedelta(minutes=rng.randint(0, 60 * 24 * 59))
        views.append((at, aid, _id(seed, "view", n)))
    views.sort()
    out += [kc.RecordArticleView(article_id=aid, view_id=view, occurred_at=at,
                                 actor="self-service") for at, aid, view in views]
    cases = [c for c in planned if isinstance(c, sc.OpenCase)]
    for n, (at, aid, view) in enumerate(views[:: max(1, VIEWS // ASKED)][:ASKED]):
        if not cases:
            break
        customer = cases[n % len(cases)].customer_id
        case = _id(seed, "asked", n)
        asked = at + timedelta(minutes=rng.randint(3, 60 * 24 * 3))
        out.append(sc.OpenCase(customer_id=customer, case_id=case, category="self-service",
                               channel="web", queue="self-service",
                               subject="Still need help after reading an article",
                               occurred_at=asked, actor="self-service"))
        out.append(kc.LinkArticleToCase(customer_id=customer, case_id=case, article_id=aid,
                                        relation="asked-after", view_id=view,
                                        occurred_at=asked, actor="self-service"))
    # chosen by the case (not its place): a smaller demo's links are a larger one's too
    linked: set[UUID] = set()
    for r in (c for c in planned if isinstance(c, sc.ResolveCase)):
        pick = _id(seed, "resolved", r.case_id).int
        if pick % RESOLVED_EVERY == 0 and r.case_id not in linked:  # first resolution only
            linked.add(r.case_id)
            out.append(kc.LinkArticleToCase(
                customer_id=r.customer_id, case_id=r.case_id, relation="resolved",
                article_id=public[(pick // RESOLVED_EVERY) % len(public)],
                occurred_at=r.occurred_at, actor="agent:mia"))
    return out
