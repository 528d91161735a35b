"""The outbox read model: queued outbound emails and their delivery state.

A projection like the others (``projections.engine``): its rows and its position
in the log change in one transaction, so each event is applied exactly once; it
is rebuilt beside the live generation and swapped (``touchstream projections
rebuild outbox``). Nothing here sends anything: the sender reads what is due and
records each outcome as a command, which comes back here as an event, so a
rebuild re-reads outcomes and sends nothing.
"""

from __future__ import annotations

from collections.abc import Sequence

import orjson

from domain.customer import Customer
from domain.marketing import CampaignEmailQueued, CampaignEmailSuppressed
from domain.replies import AutoReplyQueued, MaterialSent, TemplateRendered
from projections.engine import Names, Projection, Table
from projections.events import Item, customer_id, is_erased, us
from projections.store import Db

QUEUED, SENT, FAILED, SUPPRESSED = "queued", "sent", "failed", "suppressed"
PAYLOAD = ("from_address", "to", "cc", "subject", "body_text", "in_reply_to", "references")
_COLUMNS = ("message_id", "customer_id", "envelope_id", "queued_us", "payload", "status",
            "attempts", "last_attempt_us", "detail")
# What an erased customer's email reads as (the same live and after a rebuild).
ERASED_PAYLOAD = orjson.dumps({"from_address": "", "to": [], "cc": [], "subject": "",
                               "body_text": "", "in_reply_to": None, "references": []}).decode()
ERASED_DETAIL = "personal data erased"
# attempts never go down, whatever order a retry's outcomes arrive in
_AT_LEAST = "CASE WHEN attempts > ? THEN attempts ELSE ? END"


class OutboxProjection(Projection):
    name = "outbox"
    touches = (Customer.PersonalDataErased, Customer.EmailQueued, CampaignEmailQueued,
               TemplateRendered, AutoReplyQueued, MaterialSent, CampaignEmailSuppressed,
               Customer.EmailOutcomeUnknown, Customer.EmailSent, Customer.EmailSendFailed)
    tables = (Table("entry", ("message_id",), _COLUMNS),)

    def ddl(self, dialect: str) -> list[str]:
        return [
            ("CREATE TABLE {entry} (message_id TEXT PRIMARY KEY, customer_id TEXT NOT NULL, "
             "envelope_id TEXT NOT NULL, queued_us BIGINT NOT NULL, payload TEXT NOT NULL, "
             "status TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, last_attempt_us BIGINT, "
             "detail TEXT)"),
        ]

    def deferred_ddl(self, dialect: str) -> list[str]:
        return [
            "CREATE INDEX {entry}_status ON {entry} (status, queued_us)",
            "CREATE INDEX {entry}_envelope ON {entry} (envelope_id)",
        ]

    def apply(self, db: Db, t: Names, items: Sequence[Item]) -> None:
        for _, e in items:
            if isinstance(e, Customer.PersonalDataErased):
                # Nothing of the person's is sent any more, and nothing of it stays here.
                db.execute(
                    f"UPDATE {t.entry} SET payload=?, detail=?, status=CASE WHEN status=? "
                    "THEN ? ELSE status END WHERE customer_id=?",
                    (ERASED_PAYLOAD, ERASED_DETAIL, QUEUED, FAILED, customer_id(e)))
            elif isinstance(e, Customer.EmailQueued):
                payload = (ERASED_PAYLOAD if is_erased(e)
                           else orjson.dumps({k: getattr(e, k) for k in PAYLOAD}).decode())
                db.execute(
                    f"INSERT INTO {t.entry} (message_id, customer_id, envelope_id, queued_us, "
                    "payload, status) VALUES (?,?,?,?,?,?) ON CONFLICT (message_id) DO NOTHING",
                    (e.message_id, customer_id(e), e.envelope_id, us(e.occurred_at), payload,
                     QUEUED),
                )
            elif isinstance(e, CampaignEmailQueued):
                # The email queued just before is a marketing send: the sender asks for
                # consent again before each attempt and adds the one-click unsubscribe.
                _mark_marketing(db, t, e)
            elif isinstance(e, (TemplateRendered, AutoReplyQueued, MaterialSent)):
                _mark_reply(db, t, e)
            elif isinstance(e, CampaignEmailSuppressed):
                db.execute(f"UPDATE {t.entry} SET status=?, detail=? WHERE message_id=? "
                           "AND status=?", (SUPPRESSED, e.reason, e.message_id, QUEUED))
            elif isinstance(e, Customer.EmailOutcomeUnknown):
                db.execute(
                    f"UPDATE {t.entry} SET attempts={_AT_LEAST}, last_attempt_us=?, detail=? "
                    "WHERE message_id=? AND status=?",
                    (e.attempt, e.attempt, us(e.occurred_at), e.reason, e.message_id, QUEUED),
                )
            elif isinstance(e, (Customer.EmailSent, Customer.EmailSendFailed)):
                sent = isinstance(e, Customer.EmailSent)
                db.execute(
                    f"UPDATE {t.entry} SET status=?, attempts={_AT_LEAST}, last_attempt_us=?, "
                    "detail=? WHERE message_id=?",
                    (SENT if sent else FAILED, e.attempt, e.attempt, us(e.occurred_at),
                     e.response if sent else e.reason, e.message_id),  # type: ignore[union-attr]
                )


def _mark_marketing(db: Db, t: Names, e: CampaignEmailQueued) -> None:
    row = db.one(f"SELECT payload FROM {t.entry} WHERE message_id=?", (e.message_id,))
    if row is None or is_erased(e):
        return
    payload = orjson.loads(row[0])
    payload.update(campaign_id=e.campaign_id, purpose=e.purpose,
                   list_unsubscribe=e.unsubscribe_url)
    db.execute(f"UPDATE {t.entry} SET payload=? WHERE message_id=?",
               (orjson.dumps(payload).decode(), e.message_id))


def _mark_reply(db: Db, t: Names, e: TemplateRendered | AutoReplyQueued | MaterialSent) -> None:
    """What the replies area adds to an email queued just before: an HTML alternative,
    ``Auto-Submitted: auto-replied`` (RFC 3834), an attachment from the library."""
    if e.message_id is None:
        return  # material by fax: not an email
    row = db.one(f"SELECT payload FROM {t.entry} WHERE message_id=?", (e.message_id,))
    if row is None or is_erased(e):
        return
    payload = orjson.loads(row[0])
    if isinstance(e, TemplateRendered):
        if not e.body_html:
            return
        payload["body_html"] = e.body_html
    elif isinstance(e, AutoReplyQueued):
        payload["auto_submitted"] = "auto-replied"
    else:
        payload.setdefault("attachments", []).append(
            {"address": e.material_id, "name": e.name, "content_type": e.content_type})
    db.execute(f"UPDATE {t.entry} SET payload=? WHERE message_id=?",
               (orjson.dumps(payload).decode(), e.message_id))
