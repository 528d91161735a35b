"""Demo replies and territories: templates, templated staff replies, material sent by
email and fax, customers' addresses in territories and one territory reassignment; and,
after seeding, acknowledgements of new cases opened from the latest inbound emails.

``replies_plan`` is pure (no clock, no I/O; deterministic by seed), built from the
customers and opportunities planned before. ``after_seed`` runs once the plan is
recorded: it opens a case from each of a few inbound emails (keyed by the email,
so a re-run opens nothing new) and runs one pass of the auto-reply and territory
policies at ``until``, so the auto-replies and territories read models show outcomes.
"""

from __future__ import annotations

import hashlib
import random
from datetime import datetime, timedelta
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from commands import email_messages as em
from commands import messages as m
from commands import replies as rc
from commands import sales as cs
from commands import service as sc
from commands import territories as tc
from domain.replies import template_id

#: (postcode prefix, country) per demo territory (the built-in ones: see settings.work)
POSTCODES = ("EC1A 1BB", "SW1A 2AA", "N1 9GU", "M1 1AE", "LS1 4DY", "NE1 7RU", "B1 1BB",
             "CF10 1EP", "EH1 1YZ", "BS1 4DJ")
TEMPLATES = [
    rc.SaveTemplate(name="auto-ack", language="en", subject="Re: {{ subject }} "
                    "[case {{ case.reference }}]", body_text=(
                        "Dear {{ customer.name }},\n\nthank you for your message. We opened "
                        "case {{ case.reference }} and will answer within one working day.\n"
                        "{% if status_link is defined %}\nFollow it, or answer us, here: "
                        "{{ status_link }}\n{% endif %}"),
                    body_html=("<p>Dear {{ customer.name }},</p><p>thank you for your message. "
                               "We opened case <b>{{ case.reference }}</b>.</p>"
                               "{% if status_link is defined %}<p><a href=\"{{ status_link }}\">"
                               "Follow your case, or answer us</a></p>{% endif %}")),
    rc.SaveTemplate(name="auto-ack", language="de", subject="Re: {{ subject }} "
                    "[Fall {{ case.reference }}]", body_text=(
                        "Guten Tag {{ customer.name }},\n\nvielen Dank für Ihre Nachricht. "
                        "Wir haben Fall {{ case.reference }} eröffnet.\n")),
    rc.SaveTemplate(name="case-reply", language="en", subject="Re: {{ subject }}", body_text=(
        "Dear {{ customer.name }},\n\n{{ answer }}\n\nKind regards,\n{{ agent }}\n")),
    rc.SaveTemplate(name="price-list-cover", template_channel="fax", language="en",
                    subject="Price list", body_text=(
                        "For the attention of {{ customer.name }}: our price list follows "
                        "({{ pages }} pages).\n")),
]
MAX_REPLIES = 12
ACK_CASES = 6


def _id(seed: int, *parts: object) -> UUID:
    return uuid5(NAMESPACE_URL, f"touchstream-demo-replies:{seed}:" + ":".join(map(str, parts)))


def replies_plan(planned: list[m.Command], blobs: list[bytes], seed: int,
                 until: datetime) -> list[m.Command]:
    def rng_of(*what: object) -> random.Random:  # per item: a smaller demo is a prefix
        return random.Random(f"replies:{seed}:" + ":".join(map(str, what)))

    at = until - timedelta(days=20)
    out: list[m.Command] = [t.model_copy(update={
        "source_key": f"demo-replies:{seed}:template:{t.name}:{t.language}", "occurred_at": at,
        "actor": "marketing"}) for t in TEMPLATES]
    emails = {c.customer_id: c.contact_points[0].value for c in planned
              if isinstance(c, m.RegisterCustomer) and c.customer_id and c.contact_points
              and c.contact_points[0].kind == "email"}
    # customers with opportunities get an address in a territory; those with one still
    # open mostly in London, whose reassignment below then moves something
    closed = {str(c.opportunity_id) for c in planned
              if isinstance(c, (cs.WinOpportunity, cs.LoseOpportunity))}
    still_open = {c.customer_id for c in planned if isinstance(c, cs.OpenOpportunity)
                  and c.the_opportunity_id() not in closed}
    owners = list(dict.fromkeys(c.customer_id for c in planned
                                if isinstance(c, cs.OpenOpportunity)))
    for cid in owners:
        rng = rng_of("address", cid)
        london = cid in still_open and rng.random() < 0.7
        out.append(m.ChangeProfile(customer_id=cid, changes={
            "country": "GB", "postcode": rng.choice(POSTCODES[:3] if london else POSTCODES)},
            source_key=f"demo-replies:{seed}:address:{cid}", occurred_at=at, actor="sales"))
    # templated staff replies on cases
    # (not the self-service demo's cases: which customer opened those depends on how many
    # cases there are, and a smaller demo must stay a prefix of a larger one)
    cases = [c for c in planned if isinstance(c, sc.OpenCase) and c.customer_id in emails
             and c.category != "self-service"]
    for case in cases[:MAX_REPLIES]:
        rng = rng_of("reply", case.case_id)
        out.append(em.SendEmail(
            customer_id=case.customer_id, from_address="support@example.org",
            to=[emails[case.customer_id]], template_id=template_id("case-reply"),
            case_id=case.case_id, variables={
                "subject": case.subject, "agent": rng.choice(("jo", "mia", "sam", "lee")),
                "answer": rng.choice(("The replacement part ships on Monday.",
                                      "We refunded the difference to your account.",
                                      "An engineer will call you to book a visit."))},
            source_key=f"demo-replies:{seed}:reply:{case.case_id}",
            occurred_at=until - timedelta(days=rng.randint(2, 15)), actor="agent:jo"))
    # material from the library, by email and by fax
    document = b"%PDF-1.4\n% Demo price list 2027\n"
    blobs.append(document)
    material = hashlib.sha256(document).hexdigest()
    faxes = {c.customer_id for c in planned if isinstance(c, m.RegisterCustomer)
             and any(p.kind == "fax" for p in c.contact_points)}
    chosen = [cid for cid in emails if rng_of("material", cid).random() < 0.15]
    for cid in chosen:
        rng = rng_of("material-send", cid)
        channel = "fax" if cid in faxes and rng.random() < 0.5 else "email"
        out.append(rc.SendMaterial(
            customer_id=cid, material_id=material, name="Price list 2027.pdf",
            size=len(document), send_channel=channel,  # type: ignore[arg-type]
            from_address="sales@example.org", subject="Our price list",
            body_text="Please find our price list attached.\n",
            rule="price-request" if rng.random() < 0.5 else None, send_id=_id(seed, "material", cid),
            occurred_at=until - timedelta(days=rng.randint(1, 30)), actor="sales"))
    out.append(tc.ReassignTerritory(territory="london", to_owner="jo",
                                    source_key=f"demo-replies:{seed}:territory:london",
                                    occurred_at=until - timedelta(days=3), actor="sales"))
    return out


def after_seed(deps: Any, until: datetime) -> dict[str, int]:
    """Open a case from each of a few inbound emails and acknowledge them; move the
    reassigned territory's opportunities. Keyed throughout: a re-run records nothing new."""
    from commands.errors import CommandError
    from domain.errors import DomainError
    from projections.auto_replies.projection import AutoRepliesProjection
    from projections.auto_replies.view import AutoRepliesView
    from touchstream.auto_replies import AutoReplies
    from touchstream.territory_moves import TerritoryMoves

    hub = deps.hub
    deps.catch_up(AutoRepliesProjection())
    opened = 0
    for event_id, cid, subject in AutoRepliesView(deps.read_store).some_inbound(ACK_CASES):
        try:
            done = hub.execute(sc.OpenCase(
                customer_id=UUID(cid), case_id=uuid5(NAMESPACE_URL, event_id),
                category="general", channel="email", queue="default",
                subject=(subject or "(no subject)")[:500], origin_event_id=UUID(event_id),
                occurred_at=until - timedelta(hours=2), actor="agent:mia"))
        except (DomainError, CommandError):  # the email is in a case already, or merged away
            continue
        opened += 0 if done.duplicate else 1
    sent, withheld, _ = AutoReplies(deps, lambda: until).run_once(
        until, from_address="support@example.org")
    moved, _ = TerritoryMoves(deps).run_once(until)
    return {"cases_opened": opened, "acknowledged": sent, "withheld": withheld,
            "territory_moves": moved}
