"""Campaign performance and attribution: what each campaign sent, what came of it.

Facts, one row per contributing event (so every figure drills down to its
events): ``queued``, ``sent``, ``failed``, ``bounced`` (a permanent failure
report about a campaign email), ``suppressed`` (refused at send time for want
of consent), ``unsubscribed`` (a withdrawal through the campaign's link) and
``response``. A response is, within the campaign's own attribution window:

* email: an inbound email in the thread of a campaign email to that customer,
  up to ``window`` days after it was queued;
* web: a form submission whose ``campaign`` field (or ``campaign``/``utm_campaign``
  in the page's query string) is the campaign's code, from its first day to
  ``window`` days after its last;
* phone: an inbound call to the campaign's tracked number, in the same period.

Attribution keeps, for each response, its own campaign and the first-touch and
last-touch campaigns (``domain.marketing.first_and_last`` over the customer's
touches: campaign emails sent to them and their earlier responses). The
``attribution`` table is keyed by the attributed event and its kind.

Sales (``domain.sales``) are attributed the same way:

* an ``OrderPlaced`` gets the first-touch and last-touch campaigns of the
  customer's touches within each campaign's window before it (kind ``order``);
  its total, refunds and cancellation are kept in ``sale_order`` (minor units),
  and the last-touch campaign is credited with its revenue (the headline figures),
  the first-touch campaign too under the first-touch model (``first_touch_*``);
* an ``OpportunityOpened`` gets first and last touch too (kind ``opportunity``);
  one naming a ``source_campaign_id`` is credited to that campaign directly,
  one without to its last-touch campaign.

Erasure: the form fields and called numbers that linked a web or phone response
are personal and gone after an erasure, so those responses are removed when
the customer is erased (live equals rebuild); email replies stay (thread ids
are kept in clear).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit
from uuid import UUID

from domain import marketing as mk
from domain import sales
from domain.customer import Customer, email_thread_id
from projections.engine import Names, Projection, Table
from projections.events import customer_id, is_erased, moment, us
from projections.store import Db

_CAMPAIGN = ("campaign_id", "name", "channel", "purpose", "budget", "currency", "starts_on",
             "ends_on", "segment_id", "code", "tracked_number", "window_days", "state",
             "defined_event", "launched_event", "closed_event")
_MESSAGE = ("message_id", "campaign_id", "customer_id", "thread_id", "queued_us")
_FACT = ("metric", "event_id", "campaign_id", "customer_id", "message_id", "channel", "at_us")
_ATTRIBUTION = ("event_id", "kind", "customer_id", "channel", "at_us", "campaign_id",
                "first_campaign_id", "last_campaign_id")
_SALE_ORDER = ("event_id", "order_number", "customer_id", "currency", "total_minor",
               "refunded_minor", "cancelled_us")


def record_id(oid: Any, kind: str) -> str:
    """A record's UUID as text, whatever the store named its stream."""
    return str(oid) if isinstance(oid, UUID) else str(UUID(str(oid).removeprefix(f"{kind}-")))


class CampaignsProjection(Projection):
    name = "campaigns"
    tables = (
        Table("campaign", ("campaign_id",), _CAMPAIGN),
        Table("message", ("message_id",), _MESSAGE),
        Table("fact", ("metric", "event_id"), _FACT),
        Table("attribution", ("event_id", "kind"), _ATTRIBUTION),
        Table("sale_order", ("event_id",), _SALE_ORDER),
    )
    consumes = (Customer.Event, mk.Campaign.Event)

    def ddl(self, dialect: str) -> list[str]:
        return [
            ("CREATE TABLE {campaign} (campaign_id TEXT PRIMARY KEY, name TEXT NOT NULL, "
             "channel TEXT NOT NULL, purpose TEXT NOT NULL, budget TEXT NOT NULL, "
             "currency TEXT NOT NULL, starts_on TEXT NOT NULL, ends_on TEXT NOT NULL, "
             "segment_id TEXT, code TEXT NOT NULL, tracked_number TEXT, "
             "window_days INTEGER NOT NULL, state TEXT NOT NULL, defined_event TEXT NOT NULL, "
             "launched_event TEXT, closed_event TEXT)"),
            ("CREATE TABLE {message} (message_id TEXT PRIMARY KEY, campaign_id TEXT NOT NULL, "
             "customer_id TEXT NOT NULL, thread_id TEXT NOT NULL, queued_us BIGINT NOT NULL)"),
            ("CREATE TABLE {fact} (metric TEXT NOT NULL, event_id TEXT NOT NULL, "
             "campaign_id TEXT NOT NULL, customer_id TEXT NOT NULL, message_id TEXT, "
             "channel TEXT NOT NULL, at_us BIGINT NOT NULL, PRIMARY KEY (metric, event_id))"),
            ("CREATE TABLE {attribution} (event_id TEXT NOT NULL, kind TEXT NOT NULL, "
             "customer_id TEXT NOT NULL, channel TEXT NOT NULL, at_us BIGINT NOT NULL, "
             "campaign_id TEXT, first_campaign_id TEXT, last_campaign_id TEXT, "
             "PRIMARY KEY (event_id, kind))"),
            ("CREATE TABLE {sale_order} (event_id TEXT PRIMARY KEY, order_number TEXT NOT NULL, "
             "customer_id TEXT NOT NULL, currency TEXT NOT NULL, total_minor BIGINT NOT NULL, "
             "refunded_minor BIGINT NOT NULL DEFAULT 0, cancelled_us BIGINT)"),
            "CREATE INDEX {sale_order}_number ON {sale_order} (order_number)",
            "CREATE INDEX {message}_thread ON {message} (thread_id)",
            "CREATE INDEX {message}_customer ON {message} (customer_id)",  # ``_mailed``
            "CREATE INDEX {campaign}_code ON {campaign} (code)",
        ]

    def deferred_ddl(self, dialect: str) -> list[str]:
        return ["CREATE INDEX {fact}_campaign ON {fact} (campaign_id, metric)",
                "CREATE INDEX {fact}_customer ON {fact} (customer_id, at_us)",
                "CREATE INDEX {attribution}_last ON {attribution} (last_campaign_id, kind)",
                "CREATE INDEX {attribution}_first ON {attribution} (first_campaign_id, kind)",
                "CREATE INDEX {attribution}_source ON {attribution} (campaign_id, kind)"]

    def apply(self, db: Db, t: Names, items: Sequence[Any]) -> None:
        # An inbound email can only answer a campaign email sent to its customer: the
        # customers with one are read once for the batch (and grow with the batch's
        # queued emails; message rows are never deleted), so the others' emails ask no
        # statement each (that lookup was two thirds of this model's statements).
        if t.message not in _INDEXED:  # a generation built before the index had none
            db.execute(f"CREATE INDEX IF NOT EXISTS {t.message}_customer "
                       f"ON {t.message} (customer_id)")
            _INDEXED.add(t.message)
        mailed = _mailed(db, t, items)
        for _, e in items:
            handler = _HANDLERS.get(type(e))
            if handler is None:
                continue
            if type(e) is Customer.EmailRecorded and customer_id(e) not in mailed:
                continue
            handler(db, t, e)
            if type(e) is mk.CampaignEmailQueued:
                mailed.add(customer_id(e))


#: message tables this process has seen the customer index on: a live generation created
#: before ``_mailed`` existed gets it at its first batch, not a table scan every batch
_INDEXED: set[str] = set()


def _mailed(db: Db, t: Names, items: Sequence[Any]) -> set[str]:
    """Of the customers of ``items``' inbound emails, those sent a campaign email."""
    cids = sorted({customer_id(e) for _, e in items
                   if type(e) is Customer.EmailRecorded and e.direction == "inbound"})
    found: set[str] = set()
    for start in range(0, len(cids), 500):
        part = cids[start:start + 500]
        found.update(r[0] for r in db.all(
            f"SELECT DISTINCT customer_id FROM {t.message} "
            f"WHERE customer_id IN ({','.join('?' * len(part))})", part))
    return found


# -- campaigns -----------------------------------------------------------------------------
def _defined(db: Db, t: Names, e: mk.Campaign.Defined) -> None:
    db.execute(
        f"INSERT INTO {t.campaign} (campaign_id, name, channel, purpose, budget, currency, "
        "starts_on, ends_on, segment_id, code, tracked_number, window_days, state, "
        "defined_event) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?) "
        "ON CONFLICT (campaign_id) DO NOTHING",
        (record_id(e.originator_id, "campaign"), e.name, e.channel, e.purpose, e.budget,
         e.currency, e.starts_on, e.ends_on, e.segment_id, e.code, e.tracked_number,
         e.attribution_window_days, "defined", str(e.event_id)))


def _step(state: str, column: str) -> Any:
    def handle(db: Db, t: Names, e: mk.Campaign.Event) -> None:
        db.execute(f"UPDATE {t.campaign} SET state=?, {column}=? WHERE campaign_id=?",
                   (state, str(e.event_id), record_id(e.originator_id, "campaign")))
    return handle


# -- sends and their outcomes --------------------------------------------------------------
def _fact(db: Db, t: Names, metric: str, e: Any, campaign: str, message: str | None,
          channel: str = "email") -> None:
    db.execute(f"INSERT INTO {t.fact} (metric, event_id, campaign_id, customer_id, message_id, "
               "channel, at_us) VALUES (?,?,?,?,?,?,?) ON CONFLICT (metric, event_id) DO NOTHING",
               (metric, str(e.event_id), campaign, customer_id(e), message, channel,
                us(e.occurred_at)))


def _queued(db: Db, t: Names, e: mk.CampaignEmailQueued) -> None:
    cid = customer_id(e)
    db.execute(f"INSERT INTO {t.message} (message_id, campaign_id, customer_id, thread_id, "
               "queued_us) VALUES (?,?,?,?,?) ON CONFLICT (message_id) DO NOTHING",
               (e.message_id, e.campaign_id, cid, email_thread_id(cid, e.message_id, None, []),
                us(e.occurred_at)))
    _fact(db, t, "queued", e, e.campaign_id, e.message_id)


def _campaign_of(db: Db, t: Names, message_id: str) -> str | None:
    found = db.scalar(f"SELECT campaign_id FROM {t.message} WHERE message_id=?", (message_id,))
    return None if found is None else str(found)


def _outcome(metric: str) -> Any:
    def handle(db: Db, t: Names, e: Any) -> None:
        message = e.original_message_id if metric == "bounced" else e.message_id
        if metric == "bounced" and not mk.is_hard_bounce(e.action, e.status):
            return
        campaign = _campaign_of(db, t, message)
        if campaign is not None:
            _fact(db, t, metric, e, campaign, message)
    return handle


def _suppressed(db: Db, t: Names, e: mk.CampaignEmailSuppressed) -> None:
    _fact(db, t, "suppressed", e, e.campaign_id, e.message_id)


def _withdrawn(db: Db, t: Names, e: mk.ConsentWithdrawn) -> None:
    if e.campaign_id is None or e.reason != "unsubscribe":
        return
    message = db.scalar(f"SELECT message_id FROM {t.message} WHERE campaign_id=? AND "
                        "customer_id=?", (e.campaign_id, customer_id(e)))
    _fact(db, t, "unsubscribed", e, e.campaign_id, None if message is None else str(message))


# -- responses -----------------------------------------------------------------------------
def _email_in(db: Db, t: Names, e: Customer.EmailRecorded) -> None:
    if e.direction != "inbound":
        return
    # In the thread of a campaign email to this customer (its thread id is derived from the
    # campaign email's Message-ID), or answering it directly when the source set a thread.
    row = db.one(f"SELECT m.message_id, m.campaign_id, m.queued_us, c.window_days "
                 f"FROM {t.message} m JOIN {t.campaign} c ON c.campaign_id = m.campaign_id "
                 "WHERE (m.thread_id=? OR m.message_id=?) AND m.customer_id=? "
                 "AND m.message_id<>? ORDER BY m.queued_us LIMIT 1",
                 (e.thread_id, e.in_reply_to or "", customer_id(e), e.message_id))
    if row is None:
        return
    if mk.in_window(moment(row[2]), e.occurred_at, timedelta(days=int(row[3]))):
        _respond(db, t, e, str(row[1]), str(row[0]), "email")


def _form(db: Db, t: Names, e: Customer.WebFormSubmitted) -> None:
    if is_erased(e):
        return
    code = form_code(e.fields, e.page_url)
    if code:
        _by_period(db, t, e, "code", code, "web")


def form_code(fields: dict[str, str] | None, page_url: str | None) -> str | None:
    """The campaign code a submission carries: a ``campaign`` field, else ``campaign`` or
    ``utm_campaign`` in the page's query string (upper-cased)."""
    if fields and fields.get("campaign"):
        return fields["campaign"].strip().upper()
    if page_url:
        query = parse_qs(urlsplit(page_url).query)
        for name in ("campaign", "utm_campaign"):
            if query.get(name):
                return query[name][0].strip().upper()
    return None


def _call(db: Db, t: Names, e: Customer.CallLogged) -> None:
    if e.direction == "inbound" and e.to_number and not is_erased(e):
        # Tracked numbers are kept in E.164; a call's number may carry spaces or dashes.
        _by_period(db, t, e, "tracked_number", re.sub(r"[^\d+]", "", e.to_number), "phone")


def _by_period(db: Db, t: Names, e: Any, column: str, value: str, channel: str) -> None:
    rows = db.all(f"SELECT campaign_id, starts_on, ends_on, window_days FROM {t.campaign} "
                  f"WHERE {column}=? ORDER BY campaign_id", (value,))
    for campaign, starts, ends, window in rows:
        if mk.in_period(starts, ends, int(window), e.occurred_at):
            _respond(db, t, e, str(campaign), None, channel)
            return


def _respond(db: Db, t: Names, e: Any, campaign: str, message: str | None,
             channel: str) -> None:
    _fact(db, t, "response", e, campaign, message, channel)
    attribute(db, t, e, "response", channel, campaign)


def attribute(db: Db, t: Names, e: Any, kind: str, channel: str, campaign: str | None) -> None:
    """Keep first-touch and last-touch campaigns for ``e`` (a response, an opportunity or an
    order) from the customer's earlier touches; ``campaign`` is its own campaign, if any."""
    cid, at = customer_id(e), us(e.occurred_at)
    first, last = _touches(db, t, cid, at)
    db.execute(f"INSERT INTO {t.attribution} (event_id, kind, customer_id, channel, at_us, "
               "campaign_id, first_campaign_id, last_campaign_id) VALUES (?,?,?,?,?,?,?,?) "
               "ON CONFLICT (event_id, kind) DO NOTHING",
               (str(e.event_id), kind, cid, channel, at, campaign, first, last))


def _touches(db: Db, t: Names, cid: str, at: int) -> tuple[str | None, str | None]:
    rows = db.all(f"SELECT f.campaign_id, f.at_us, c.window_days FROM {t.fact} f JOIN "
                  f"{t.campaign} c ON c.campaign_id = f.campaign_id WHERE f.customer_id=? "
                  "AND f.metric IN ('sent', 'response') AND f.at_us <= ?", (cid, at))
    touches = [mk.Touch(str(c), moment(a)) for c, a, _ in rows]
    windows = {str(c): timedelta(days=int(w)) for c, _, w in rows}
    return mk.first_and_last(touches, moment(at), windows)


def _erased(db: Db, t: Names, e: Customer.PersonalDataErased) -> None:
    """Drop the responses only personal fields linked, and attribute the rest again without
    them (what a rebuild, which no longer sees those fields, computes)."""
    cid = customer_id(e)
    db.execute(f"DELETE FROM {t.fact} WHERE customer_id=? AND metric='response' "
               "AND channel IN ('web', 'phone')", (cid,))
    db.execute(f"DELETE FROM {t.attribution} WHERE customer_id=? AND kind='response' "
               "AND channel IN ('web', 'phone')", (cid,))
    for event_id, kind, at in db.all(f"SELECT event_id, kind, at_us FROM {t.attribution} "
                                     "WHERE customer_id=?", (cid,)):
        first, last = _touches(db, t, cid, int(at))
        db.execute(f"UPDATE {t.attribution} SET first_campaign_id=?, last_campaign_id=? "
                   "WHERE event_id=? AND kind=?", (first, last, event_id, kind))


# -- sales ---------------------------------------------------------------------------------
def _opportunity(db: Db, t: Names, e: sales.OpportunityOpened) -> None:
    attribute(db, t, e, "opportunity", e.channel, e.source_campaign_id)


def _order(db: Db, t: Names, e: sales.OrderPlaced) -> None:
    db.execute(f"INSERT INTO {t.sale_order} (event_id, order_number, customer_id, currency, "
               "total_minor) VALUES (?,?,?,?,?) ON CONFLICT (event_id) DO NOTHING",
               (str(e.event_id), e.order_number, customer_id(e), e.currency,
                sales.to_minor(e.total, e.currency)))
    attribute(db, t, e, "order", e.channel, None)


def _order_returned(db: Db, t: Names, e: sales.OrderReturned) -> None:
    db.execute(f"UPDATE {t.sale_order} SET refunded_minor = refunded_minor + ? "
               "WHERE order_number=? AND customer_id=?",
               (sales.to_minor(e.amount, e.currency), e.order_number, customer_id(e)))


def _order_cancelled(db: Db, t: Names, e: sales.OrderCancelled) -> None:
    db.execute(f"UPDATE {t.sale_order} SET cancelled_us=? WHERE order_number=? AND "
               "customer_id=?", (us(e.occurred_at), e.order_number, customer_id(e)))


_HANDLERS: dict[type, Any] = {
    mk.Campaign.Defined: _defined,
    mk.Campaign.Launched: _step("launched", "launched_event"),
    mk.Campaign.Closed: _step("closed", "closed_event"),
    mk.CampaignEmailQueued: _queued,
    Customer.EmailSent: _outcome("sent"),
    Customer.EmailSendFailed: _outcome("failed"),
    Customer.EmailBounced: _outcome("bounced"),
    mk.CampaignEmailSuppressed: _suppressed,
    mk.ConsentWithdrawn: _withdrawn,
    Customer.EmailRecorded: _email_in,
    Customer.WebFormSubmitted: _form,
    Customer.CallLogged: _call,
    Customer.PersonalDataErased: _erased,
    sales.OpportunityOpened: _opportunity,
    sales.OrderPlaced: _order,
    sales.OrderReturned: _order_returned,
    sales.OrderCancelled: _order_cancelled,
}
# ``apply`` acts only on the classes it has a handler for.
CampaignsProjection.touches = tuple(_HANDLERS)
