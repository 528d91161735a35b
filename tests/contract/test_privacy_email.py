"""Erasure reaches the email channel's own state, and blobs are kept per owner.

Mail goes through the channel's real routing (``InboundMail``) into the write
model on SQLite and PostgreSQL, with the IMAP ledger and message index the
follower keeps (always a SQLite file under the data folder). Erasing a person
turns their ledger rows to ``erased``, drops their content-dedup rows, makes
their quarantined messages unreadable (sealed entry key destroyed, kept bytes
shredded) and leaves everyone else's as it was; the same attachment sent by
two people is two blobs, and only the erased person's goes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from uuid import UUID

import pytest

from channels.blobs import BlobNotFoundError, BlobUnreadableError
from channels.email.config import InboundRules
from channels.email.inbound import InboundMail, Origin
from channels.email.quarantine import quarantined_messages
from channels.email.state import ERASED, ImapState, LedgerRow, SQLiteImapState
from commands import messages as m
from commands.hub import Hub
from tests.support.hubs import make_hub
from tests.support.mail import all_events, multipart, of_type
from touchstream import settings as settings_mod
from touchstream.bootstrap import Dependencies
from touchstream.email_wiring import imap_state, imap_state_path
from touchstream.privacy.mapper import QUARANTINED_TOPIC

ACCOUNT, FOLDER, UIDVALIDITY = "support@shop.example", "INBOX", 7
RULES = InboundRules(staff_domains=frozenset({"shop.example"}), max_bytes=100_000)
CANARY = "zq7mailstate"
ADA = f"{CANARY}.ada@example.com"
ADA_SECOND = f"{CANARY}.second@example.org"
BOB = "bob.control@example.net"
PDF = b"%PDF-1.4 the shop's public order form, sent back by many people\n"


@pytest.fixture(params=["sqlite", "postgres"])
def env(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, str]:
    from tests.conftest import store_env

    return store_env(request.param, tmp_path / "data")


@pytest.fixture
def hub(env: dict[str, str]) -> Iterator[Hub]:
    h = make_hub(env)
    yield h
    h.close()


def mail_from(n: int, sender: str, note: str) -> bytes:
    return multipart(n, [("text/plain", f"{note} from {sender}".encode(), None),
                         ("application/pdf", PDF, "order.pdf")], sender=sender,
                     extra="Date: Tue, 24 Nov 2026 10:00:00 +0000")


def test_erasure_purges_the_persons_ledger_rows_quarantine_and_own_blob_copies(
        env: dict[str, str], hub: Hub) -> None:
    settings = settings_mod.load(env)
    deps = Dependencies(settings, hub=hub)
    state = imap_state(settings)  # the SQLite file, or the tables in PostgreSQL
    inbound = InboundMail(hub, deps.blobs, RULES, index=state)
    ada = hub.execute(m.RegisterCustomer(name="Ada", contact_points=[
        m.ContactPointIn(kind="email", value=ADA)])).customer_id
    bob = hub.execute(m.RegisterCustomer(name="Bob", contact_points=[
        m.ContactPointIn(kind="email", value=BOB)])).customer_id
    raws = {1: mail_from(1, ADA, "order"), 2: mail_from(2, BOB, "order")}
    outcomes = {uid: inbound.record(raw, Origin(ACCOUNT, FOLDER, UIDVALIDITY, uid))
                for uid, raw in raws.items()}
    # Over the size limit: kept aside in quarantine with their header block; one from
    # an address Ada is known by only later, one from a stranger.
    raws[3] = mail_from(3, ADA_SECOND, "second address " + "x" * RULES.max_bytes)
    raws[4] = mail_from(4, "stranger@example.org", "stranger " + "x" * RULES.max_bytes)
    for uid in (3, 4):
        outcomes[uid] = inbound.record(raws[uid], Origin(ACCOUNT, FOLDER, UIDVALIDITY, uid))
    assert [outcomes[u].kind for u in (1, 2, 3, 4)] == ["email", "email", "quarantine",
                                                        "quarantine"]
    state.commit(ACCOUNT, FOLDER, UIDVALIDITY, [
        LedgerRow(uid, o.source_keys[0], o.kind) for uid, o in outcomes.items()], 4)
    hub.execute(m.AddContactPoint(customer_id=UUID(ada), contact=m.ContactPointIn(
        kind="email", value=ADA_SECOND)))

    emails = {e.originator_id: e for e in of_type(all_events(hub), "EmailRecorded")}
    ada_pdf = emails[UUID(ada)].attachments[0]["sha256"]
    bob_pdf = emails[UUID(bob)].attachments[0]["sha256"]
    assert ada_pdf != bob_pdf  # the same bytes, one copy per person
    assert deps.blobs.get(ada_pdf) == deps.blobs.get(bob_pdf) == PDF
    kept = {q.uid: q for q in quarantined_messages(hub)}
    assert set(kept) == {3, 4}
    sealed = b"".join(n.state for n in hub.recorder.select_notifications(
        1, 10_000, topics=[QUARANTINED_TOPIC]))
    assert b'"_sealed"' in sealed and CANARY.encode() not in sealed

    report = deps.eraser.erase(UUID(ada), "DSR-7", actor="privacy")
    assert (report.mail_quarantine_erased, report.mail_ledger_rows_erased) == (1, 2)

    ledger = state.ledger(ACCOUNT, FOLDER, UIDVALIDITY)
    assert {uid: row.kind for uid, row in ledger.items()} == {
        1: ERASED, 2: "email", 3: ERASED, 4: "quarantine"}
    assert ledger[1].source_key == ledger[3].source_key == ERASED
    assert state.same_contents(_content_keys(state)[:1]) != {}  # Bob's stays
    assert len(_content_keys(state)) == 1
    # The quarantine lists only the stranger's message; Ada's kept bytes are gone.
    assert [q.uid for q in quarantined_messages(hub)] == [4]
    for ref in (kept[3].header_ref, ada_pdf, emails[UUID(ada)].raw_ref):
        assert ref is not None and not deps.blobs.exists(ref)
        with pytest.raises((BlobNotFoundError, BlobUnreadableError)):
            deps.blobs.get(ref)
    assert deps.blobs.get(bob_pdf) == PDF and deps.blobs.get(kept[4].header_ref or "")
    # The state file keeps nothing that names Ada's messages: not their raw bytes'
    # digest (the source key's core), not her address. (In PostgreSQL the tables are
    # vacuumed: the rows above are all there is.)
    state.close()
    if not isinstance(state, SQLiteImapState):
        deps.close()
        return
    stored = b"".join(p.read_bytes() for p in imap_state_path(settings).parent.glob(
        "imap-state.db*"))
    for uid in (1, 3):
        assert hashlib.sha256(raws[uid]).hexdigest().encode() not in stored
    assert hashlib.sha256(raws[2]).hexdigest().encode() in stored
    assert CANARY.encode() not in stored
    # A second erasure is a no-op; the ledger rows stay erased.
    again = deps.eraser.erase(UUID(ada), "DSR-7", actor="privacy")
    assert again.recorded.duplicate and again.mail_quarantine_erased == 0
    deps.close()


def _content_keys(state: ImapState) -> list[str]:
    if isinstance(state, SQLiteImapState):
        return [r[0] for r in state._conn.execute("SELECT content_key FROM email_content")]
    with state._db.connection() as conn:  # type: ignore[attr-defined]
        return [r[0] for r in conn.execute("SELECT content_key FROM email_content")]
