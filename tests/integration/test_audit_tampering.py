"""Tampering with a sealed log, on a real SQLite file and a real PostgreSQL database.

Each test seals demo data, records a few more events (not sealed yet), tampers with
the stored rows or seals directly in the database — as someone with database access
would — and checks that ``verify`` finds it and names the position.
"""

from __future__ import annotations

import random
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest

from replays.audit.keys import SealKey
from replays.audit.log import read_batches
from replays.audit.seals import seal_log
from replays.audit.standalone_verify import seal_message
from replays.audit.verify import Report, verify_log
from tests.conftest import store_env
from touchstream import settings as settings_mod
from touchstream.audit_wiring import Audit, open_audit
from touchstream.bench.history import add_touchpoints, new_customer
from touchstream.demo import demo_plan, seed
from touchstream.settings import sqlite_path

pytestmark = pytest.mark.slow


@dataclass
class Sealed:
    audit: Audit
    kind: str
    positions: list[int]  # positions of the sealed events, in order
    raw: Any  # a DB-API connection straight to the event store

    def verify(self, **kw: Any) -> Report:
        return verify_log(self.audit.seals, self.audit.log, self.audit.key().public_key, **kw)

    def sql(self, statement: str, params: tuple[Any, ...] = ()) -> Any:
        if self.kind == "sqlite":
            statement = statement.replace("notification_id", "rowid")
            cur = self.raw.execute(statement, params)
            self.raw.commit()
            return cur
        return self.raw.execute(statement.replace("?", "%s"), params)


def _events_table(conn: psycopg.Connection) -> str:
    row = conn.execute("SELECT table_name FROM information_schema.columns "
                       "WHERE column_name = 'notification_id' AND table_schema = 'public'"
                       ).fetchone()
    assert row is not None
    return str(row[0])


@pytest.fixture(params=["sqlite", "postgres"])
def sealed(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Sealed]:
    env = store_env(request.param, tmp_path / "data")
    settings = settings_mod.load(env)
    with open_audit(settings) as audit:
        seed(audit.hub, demo_plan(customers=3, years=1, seed=7))
        audit.seal()
        rnd = random.Random(3)
        add_touchpoints(audit.hub, new_customer(audit.hub, "Later Ltd", rnd), 4, rnd)
        audit.seal()
        add_touchpoints(audit.hub, new_customer(audit.hub, "Unsealed Ltd", rnd), 3, rnd)
        positions = [int(n.id) for b in read_batches(audit.log, None) for n in b]
        latest = audit.seals.latest()
        assert latest is not None
        positions = positions[:latest.tree_size]
        if request.param == "sqlite":
            raw: Any = sqlite3.connect(sqlite_path(settings.event_store))
        else:
            raw = psycopg.connect(settings.event_store, autocommit=True)
        try:
            box = Sealed(audit, request.param, positions, raw)
            if request.param == "postgres":
                table = _events_table(raw)
                box.sql = _with_table(box.sql, table)  # type: ignore[method-assign]
            else:
                box.sql = _with_table(box.sql, "stored_events")  # type: ignore[method-assign]
            yield box
        finally:
            raw.close()


def _with_table(run: Any, table: str) -> Any:
    return lambda statement, params=(): run(statement.replace("EVENTS", table), params)


def _kinds(report: Report) -> list[tuple[str, int | None]]:
    return [(f.kind, f.position) for f in report.findings if f.position is not None]


def test_an_untampered_store_of_demo_data_verifies(sealed: Sealed) -> None:
    report = sealed.verify()
    assert report.ok, report.findings
    assert report.seals_checked == 2
    assert report.unsealed > 0 and report.tree_size == len(sealed.positions) + report.unsealed


def test_a_changed_byte_in_any_event_is_found_and_located(sealed: Sealed) -> None:
    target = sealed.positions[len(sealed.positions) // 2]
    state = bytes(sealed.sql("SELECT state FROM EVENTS WHERE notification_id = ?",
                             (target,)).fetchone()[0])
    changed = state[:5] + bytes([state[5] ^ 0x20]) + state[6:]
    sealed.sql("UPDATE EVENTS SET state = ? WHERE notification_id = ?", (changed, target))
    report = sealed.verify()
    assert not report.ok
    assert ("changed", target) in _kinds(report)
    assert {f.kind for f in report.findings} == {"seal-root", "changed"}


def test_a_deleted_middle_event_is_found_and_located(sealed: Sealed) -> None:
    target = sealed.positions[10]
    sealed.sql("DELETE FROM EVENTS WHERE notification_id = ?", (target,))
    report = sealed.verify()
    assert _kinds(report) == [("deleted", target)]


@pytest.mark.parametrize("later_events_kept", [False, True])
def test_a_truncated_tail_is_found_and_located(sealed: Sealed, later_events_kept: bool) -> None:
    cut, end = sealed.positions[-3], (sealed.positions[-1] if later_events_kept else 2**62)
    sealed.sql("DELETE FROM EVENTS WHERE notification_id >= ? AND notification_id <= ?",
               (cut, end))
    report = sealed.verify()
    assert _kinds(report) == [("truncated", cut)]
    assert any(f.kind == "seal-root" and f.seal == 2 for f in report.findings)


def test_two_swapped_events_are_found_and_located(sealed: Sealed) -> None:
    p, q = sealed.positions[4], sealed.positions[20]
    sealed.sql("UPDATE EVENTS SET notification_id = ? WHERE notification_id = ?", (-1, p))
    sealed.sql("UPDATE EVENTS SET notification_id = ? WHERE notification_id = ?", (p, q))
    sealed.sql("UPDATE EVENTS SET notification_id = ? WHERE notification_id = ?", (q, -1))
    report = sealed.verify()
    assert _kinds(report) == [("swapped", p)]
    assert str(q) in report.findings[-1].detail


def test_an_event_inserted_with_a_past_position_is_found_and_located(sealed: Sealed) -> None:
    at = sealed.positions[15]
    row = sealed.sql("SELECT originator_id, originator_version, topic, state FROM EVENTS "
                     "WHERE notification_id = ?", (at,)).fetchone()
    # make room below the end, as a forger with write access would, then insert there
    sealed.sql("UPDATE EVENTS SET notification_id = -(notification_id + 1) "
               "WHERE notification_id >= ?", (at,))
    sealed.sql("UPDATE EVENTS SET notification_id = -notification_id WHERE notification_id < 0")
    version = int(row[1]) + 1000
    sealed.sql("INSERT INTO EVENTS (notification_id, originator_id, originator_version, "
               "topic, state) VALUES (?,?,?,?,?)", (at, row[0], version, row[2], row[3]))
    report = sealed.verify()
    assert _kinds(report) == [("inserted", at)]


def _rewrite_seal(sealed: Sealed, number: int, key: SealKey | None, **changes: Any) -> None:
    old = sealed.audit.seals.get(number)
    fields = {**old.to_json(), **changes}
    if key is not None:
        fields["key_id"] = key.key_id
        fields["signature"] = key.sign(seal_message(fields)).hex()
    sealed.audit.db.execute("UPDATE audit_seals SET root = ?, key_id = ?, signature = ? "
                            "WHERE seal = ?",
                            (fields["root"], fields["key_id"], fields["signature"], number))


def test_a_forged_seal_is_found(sealed: Sealed) -> None:
    _rewrite_seal(sealed, 1, None, root="00" * 32)
    report = sealed.verify()
    assert any(f.kind == "seal-signature" and f.seal == 1 for f in report.findings)
    assert any(f.kind == "seal-root" and f.seal == 1 for f in report.findings)


def test_a_seal_re_signed_with_another_key_is_found(sealed: Sealed) -> None:
    target = sealed.positions[3]
    sealed.sql("DELETE FROM EVENTS WHERE notification_id = ?", (target,))
    # the forger re-seals the shortened log with a key of their own
    forged = seal_log(sealed.audit.seals, sealed.audit.log, SealKey.generate())
    report = sealed.verify()
    assert any(f.kind == "seal-signature" and f.seal == forged.seal for f in report.findings)
    assert ("deleted", target) in _kinds(report)


def test_verification_from_a_seal_reads_only_the_newer_events(sealed: Sealed) -> None:
    first = sealed.audit.seals.get(1)
    report = sealed.verify(from_seal=2)
    assert report.ok
    second = sealed.audit.seals.get(2)
    assert report.events_read == report.tree_size - second.tree_size
    assert report.events_read < report.tree_size - first.tree_size


def test_a_tampered_frontier_cannot_shortcut_verification(sealed: Sealed) -> None:
    sealed.audit.db.execute("UPDATE audit_seals SET frontier = ? WHERE seal = 2",
                            (b"\x00" * 32 * sealed.audit.seals.get(2).tree_size.bit_count(),))
    report = sealed.verify(from_seal=2)
    assert [f.kind for f in report.findings] == ["seal-frontier"]


def test_an_altered_leaf_cache_is_named_and_the_events_still_verify(sealed: Sealed) -> None:
    sealed.audit.db.execute("DELETE FROM audit_leaves WHERE leaf_index >= ?", (5,))
    report = sealed.verify()
    assert [f.kind for f in report.findings] == ["cache"]
    assert "the events verify" in report.findings[0].detail
