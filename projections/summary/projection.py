"""The customer summary read model: profile, contact points, stage, counts, last contacts.

Counts are of *touchpoints*, not events: the events of one call (a CDR row and
its PBX steps), of one email (queued, sent, bounced) or of one callback share
a touch key and count once. Open items: callbacks requested and not yet
completed.

Staff corrections are honoured: a voided touchpoint event no longer counts
(a touch counts while any of its events is not voided, in the channel of its
first such event) and no longer sets the last contact; a corrected date moves
the last contact. The ``occurrence`` table keeps one row per counted event so
that the customer's channel rows can be recomputed when a void or correction
arrives; it is applied after the batch's rows are written, so a rebuild (any
batch size) equals the live model. The ``events`` total counts log events:
the void is one more, the voided event is still in the log.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import orjson

from domain.customer import TOUCHPOINT_EVENTS, Customer
from projections.customers import apply_identity
from projections.engine import Names, Projection, Table
from projections.events import ERASED_NAME, Item, customer_id, event_id_text, is_erased, us
from projections.store import Db

_TOUCH_KEYS = ("call_id", "message_id", "original_message_id", "callback_id", "fax_id",
               "submission_id")


def touch_key(event: Customer.Event) -> str:
    # ``getattr(event, attr, None)`` exactly, by field: the instance's own value, else the
    # class's (a default or a property) where the class has the name, else None. Every
    # stored field counts, declared by the class or not (a per-class key list could change
    # the key of an event stored with a field its class no longer declares); what is
    # skipped is ``getattr`` raising and catching for a name neither has.
    d = event.__dict__
    on_class = _ON_CLASS.get(type(event))
    if on_class is None:
        on_class = _ON_CLASS[type(event)] = frozenset(
            a for a in _TOUCH_KEYS if hasattr(type(event), a))
    for attr in _TOUCH_KEYS:
        value = getattr(event, attr, None) if attr in on_class else d.get(attr)
        if isinstance(value, str) and value:
            return f"{attr}:{value}"
    return f"event:{event.event_id}"


_ON_CLASS: dict[type, frozenset[str]] = {}


def _json(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


class SummaryProjection(Projection):
    name = "summary"
    tables = (
        Table("customer", ("customer_id",),
              ("customer_id", "name", "company", "lifecycle_stage", "partner_id", "merged_into",
               "profile", "registered_us", "stage_changed_us", "events", "shared_notes",
               "internal_notes", "last_event_us")),
        Table("contact", ("customer_id", "kind", "value"),
              ("customer_id", "kind", "value", "label", "added_us")),
        Table("channel", ("customer_id", "channel"),
              ("customer_id", "channel", "touches", "last_us")),
        Table("touch", ("customer_id", "touch_key"), ("customer_id", "touch_key")),
        Table("occurrence", ("customer_id", "event_id"),
              ("customer_id", "event_id", "position", "touch_key", "channel", "occurred_us",
               "voided")),
        Table("callback", ("customer_id", "callback_id"),
              ("customer_id", "callback_id", "requested_us", "requested_for_us", "number",
               "reason")),
    )

    def ddl(self, dialect: str) -> list[str]:
        return [
            ("CREATE TABLE {customer} (customer_id TEXT PRIMARY KEY, name TEXT NOT NULL, "
            "company TEXT, lifecycle_stage TEXT, partner_id TEXT, merged_into TEXT, "
            "profile TEXT NOT NULL, registered_us BIGINT, stage_changed_us BIGINT, "
            "events BIGINT NOT NULL DEFAULT 0, shared_notes BIGINT NOT NULL DEFAULT 0, "
            "internal_notes BIGINT NOT NULL DEFAULT 0, last_event_us BIGINT)"),
            "CREATE INDEX {customer}_merged ON {customer} (merged_into)",
            ("CREATE TABLE {contact} (customer_id TEXT NOT NULL, kind TEXT NOT NULL, "
            "value TEXT NOT NULL, label TEXT, added_us BIGINT, "
            "PRIMARY KEY (customer_id, kind, value))"),
            ("CREATE TABLE {channel} (customer_id TEXT NOT NULL, channel TEXT NOT NULL, "
            "touches BIGINT NOT NULL, last_us BIGINT NOT NULL, PRIMARY KEY (customer_id, channel))"),
            ("CREATE TABLE {touch} (customer_id TEXT NOT NULL, touch_key TEXT NOT NULL, "
            "PRIMARY KEY (customer_id, touch_key))"),
            ("CREATE TABLE {callback} (customer_id TEXT NOT NULL, callback_id TEXT NOT NULL, "
            "requested_us BIGINT, requested_for_us BIGINT, number TEXT, reason TEXT, "
            "PRIMARY KEY (customer_id, callback_id))"),
            "CREATE INDEX {callback}_id ON {callback} (callback_id)",
            ("CREATE TABLE {occurrence} (customer_id TEXT NOT NULL, event_id TEXT NOT NULL, "
             "position BIGINT NOT NULL, touch_key TEXT NOT NULL, channel TEXT NOT NULL, "
             "occurred_us BIGINT NOT NULL, voided SMALLINT NOT NULL DEFAULT 0, "
             "PRIMARY KEY (customer_id, event_id))"),
        ]

    def apply(self, db: Db, t: Names, items: Sequence[Item]) -> None:
        greatest = "max" if db.dialect == "sqlite" else "GREATEST"
        counters: dict[str, list[int]] = {}  # customer → [events, shared, internal, last_us]
        touches: dict[tuple[str, str], tuple[str, int]] = {}  # (customer, key) → (channel, at)
        latest: dict[tuple[str, str], int] = {}  # (customer, channel) → last occurred
        occurrences: list[tuple[Any, ...]] = []
        fixes: list[Customer.Event] = []
        flags_of = _FLAGS
        for pos, e in items:
            cls = type(e)
            flags = flags_of.get(cls)
            if flags is None:
                flags = _flags(cls)
            life, note, touchpoint, fix = flags
            cid = customer_id(e)
            at = us(e.occurred_at)
            if life:
                self._life_event(db, t, cid, e, at)
            c = counters.get(cid)
            if c is None:
                c = counters[cid] = [0, 0, 0, 0]
            c[0] += 1
            c[3] = max(c[3], at)
            if note:
                c[2 if e.visibility == "internal" else 1] += 1
            if touchpoint and (channel := e.channel) != "system":
                tkey = touch_key(e)
                touches.setdefault((cid, tkey), (channel, at))
                key = (cid, channel)
                last = latest.get(key)
                if last is None or at > last:
                    latest[key] = at
                occurrences.append((cid, event_id_text(e), pos, tkey, channel, at))
            elif fix:
                fixes.append(e)
        db.executemany(
            f"INSERT INTO {t.occurrence} (customer_id, event_id, position, touch_key, channel, "
            "occurred_us) VALUES (?,?,?,?,?,?) ON CONFLICT (customer_id, event_id) DO NOTHING",
            occurrences)
        self._count_touches(db, t, touches, latest, greatest)
        db.executemany(
            f"UPDATE {t.customer} SET events=events+?, shared_notes=shared_notes+?, "
            f"internal_notes=internal_notes+?, "
            f"last_event_us={greatest}(COALESCE(last_event_us, ?), ?) WHERE customer_id=?",
            [(n, s, i, last, last, cid) for cid, (n, s, i, last) in counters.items()],
        )
        for fix in fixes:  # after the batch's touches: the touchpoint may be in this batch
            self._apply_fix(db, t, fix)

    @staticmethod
    def _apply_fix(db: Db, t: Names, fix: Customer.Event) -> None:
        cid = customer_id(fix)
        if isinstance(fix, Customer.TouchpointVoided):
            db.execute(f"UPDATE {t.occurrence} SET voided=1 WHERE customer_id=? AND event_id=?",
                       (cid, fix.voided_event_id))
        elif isinstance(fix, Customer.TouchpointCorrected) and fix.corrected_occurred_at:
            db.execute(f"UPDATE {t.occurrence} SET occurred_us=? "
                       "WHERE customer_id=? AND event_id=?",
                       (us(fix.corrected_occurred_at), cid, fix.corrected_event_id))
        else:
            return
        # Recount this customer's touches and last contacts from the events still counted.
        first: dict[str, str] = {}  # touch key → channel of its first counted event
        last: dict[str, int] = {}  # channel → latest counted event
        for key, channel, at in db.all(
                f"SELECT touch_key, channel, occurred_us FROM {t.occurrence} "
                "WHERE customer_id=? AND voided=0 ORDER BY position", (cid,)):
            first.setdefault(key, channel)
            last[channel] = max(last.get(channel, at), at)
        counts: dict[str, int] = {}
        for channel in first.values():
            counts[channel] = counts.get(channel, 0) + 1
        db.execute(f"DELETE FROM {t.touch} WHERE customer_id=?", (cid,))
        db.executemany(f"INSERT INTO {t.touch} (customer_id, touch_key) VALUES (?,?)",
                       [(cid, key) for key in sorted(first)])
        db.execute(f"DELETE FROM {t.channel} WHERE customer_id=?", (cid,))
        db.executemany(f"INSERT INTO {t.channel} (customer_id, channel, touches, last_us) "
                       "VALUES (?,?,?,?)",
                       [(cid, ch, counts.get(ch, 0), at) for ch, at in sorted(last.items())])

    @staticmethod
    def _count_touches(db: Db, t: Names, touches: dict[tuple[str, str], tuple[str, int]],
                       latest: dict[tuple[str, str], int], greatest: str) -> None:
        new: dict[tuple[str, str], int] = {}
        pairs = list(touches)
        for start in range(0, len(pairs), 500):
            chunk = pairs[start:start + 500]
            values = ",".join("(?,?)" for _ in chunk)
            flat = [v for pair in chunk for v in pair]
            rows = db.all(f"INSERT INTO {t.touch} (customer_id, touch_key) VALUES {values} "
                          "ON CONFLICT (customer_id, touch_key) DO NOTHING "
                          "RETURNING customer_id, touch_key", flat)
            for cid, key in rows:
                channel = touches[(cid, key)][0]
                new[(cid, channel)] = new.get((cid, channel), 0) + 1
        db.executemany(
            f"INSERT INTO {t.channel} (customer_id, channel, touches, last_us) VALUES (?,?,?,?) "
            "ON CONFLICT (customer_id, channel) DO UPDATE SET "
            f"touches={t.channel}.touches+excluded.touches, "
            f"last_us={greatest}({t.channel}.last_us, excluded.last_us)",
            [(cid, ch, new.get((cid, ch), 0), at) for (cid, ch), at in sorted(latest.items())],
        )

    @staticmethod
    def _life_event(db: Db, t: Names, cid: str, e: Customer.Event, at: int) -> None:
        if not _is_life_event(type(e)):
            return  # a touchpoint (most events): none of the branches below
        if isinstance(e, Customer.Registered) and is_erased(e):
            apply_identity(db, t.customer, e, name=ERASED_NAME, company=None,
                           lifecycle_stage=e.lifecycle_stage, profile="{}",
                           registered_us=at, stage_changed_us=at)
        elif isinstance(e, Customer.Registered):
            apply_identity(db, t.customer, e, name=e.name, company=e.company,
                           lifecycle_stage=e.lifecycle_stage,
                           profile=_json({"company": e.company, "name": e.name}),
                           registered_us=at, stage_changed_us=at)
        elif apply_identity(db, t.customer, e):
            return
        elif isinstance(e, Customer.PersonalDataErased):
            # The live redaction; a rebuild reads the same rows from the erased events.
            db.execute(f"UPDATE {t.customer} SET name=?, company=NULL, profile='{{}}' "
                       "WHERE customer_id=?", (ERASED_NAME, cid))
            db.execute(f"DELETE FROM {t.contact} WHERE customer_id=?", (cid,))
            db.execute(f"UPDATE {t.callback} SET number=NULL, reason=NULL WHERE customer_id=?",
                       (cid,))
        elif is_erased(e) and isinstance(e, Customer.ProfileChanged | Customer.ContactPointAdded
                                         | Customer.ContactPointRemoved):
            return  # nothing personal is left to show
        elif isinstance(e, Customer.ProfileChanged):
            row = db.one(f"SELECT profile FROM {t.customer} WHERE customer_id=?", (cid,))
            profile = orjson.loads(row[0]) if row else {}
            profile.update(e.changes)
            db.execute(f"UPDATE {t.customer} SET profile=? WHERE customer_id=?",
                       (_json(profile), cid))
            if e.changes.get("name") is not None:
                db.execute(f"UPDATE {t.customer} SET name=? WHERE customer_id=?",
                           (e.changes["name"], cid))
            if "company" in e.changes:
                db.execute(f"UPDATE {t.customer} SET company=? WHERE customer_id=?",
                           (e.changes["company"], cid))
        elif isinstance(e, Customer.ContactPointAdded):
            db.execute(f"INSERT INTO {t.contact} (customer_id, kind, value, label, added_us) "
                       "VALUES (?,?,?,?,?) ON CONFLICT (customer_id, kind, value) DO NOTHING",
                       (cid, e.kind, e.value, e.label, at))
        elif isinstance(e, Customer.ContactPointRemoved):
            db.execute(f"DELETE FROM {t.contact} WHERE customer_id=? AND kind=? AND value=?",
                       (cid, e.kind, e.value))
        elif isinstance(e, Customer.LifecycleStageChanged):
            db.execute(f"UPDATE {t.customer} SET lifecycle_stage=?, stage_changed_us=? "
                       "WHERE customer_id=?", (e.to_stage, at, cid))
        elif isinstance(e, Customer.CallbackRequested):
            db.execute(f"INSERT INTO {t.callback} (customer_id, callback_id, requested_us, "
                       "requested_for_us, number, reason) VALUES (?,?,?,?,?,?) "
                       "ON CONFLICT (customer_id, callback_id) DO NOTHING",
                       (cid, e.callback_id, at,
                        us(e.requested_for) if e.requested_for else None, e.number, e.reason))
        elif isinstance(e, Customer.CallbackCompleted):
            db.execute(f"DELETE FROM {t.callback} WHERE callback_id=?", (e.callback_id,))


_LIFE_EVENTS = (Customer.Registered, Customer.MergedInto, Customer.Unmerged,
                Customer.PartnerAssigned, Customer.PersonalDataErased, Customer.ProfileChanged,
                Customer.ContactPointAdded, Customer.ContactPointRemoved,
                Customer.LifecycleStageChanged, Customer.CallbackRequested,
                Customer.CallbackCompleted)


#: Per event class, decided once: (a life event, a note, a touchpoint, a void or
#: correction): the ``isinstance`` chain per event was a fifth of this model's rows.
_FLAGS: dict[type, tuple[bool, bool, bool, bool]] = {}


def _flags(cls: type) -> tuple[bool, bool, bool, bool]:
    flags = _FLAGS[cls] = (
        _is_life_event(cls), issubclass(cls, Customer.NoteAdded), cls in TOUCHPOINT_EVENTS,
        issubclass(cls, Customer.TouchpointVoided | Customer.TouchpointCorrected))
    return flags


@lru_cache(maxsize=512)
def _is_life_event(cls: type) -> bool:
    """True for the classes ``_life_event`` changes rows for (one check per class, not a
    chain of ten ``isinstance`` per event)."""
    return issubclass(cls, _LIFE_EVENTS)
