"""The retry-safe append ids (pure logic; the adapter itself runs against a real
server only in the contract suite, when EVENTSTOREDB_URI is set)."""

from kurrentdbclient import NewEvent, StreamState

from touchstream.adapters.kurrentdb import with_deterministic_ids


def test_a_retried_batch_gets_the_same_ids() -> None:
    batch = [NewEvent(type="t", data=b"a"), NewEvent(type="t", data=b"b")]
    first = with_deterministic_ids("customer-1", 4, batch)
    retry = with_deterministic_ids("customer-1", 4, [NewEvent(type="t", data=b"a"),
                                                     NewEvent(type="t", data=b"b")])
    assert [e.id for e in first] == [e.id for e in retry]
    assert first[0].id != first[1].id


def test_different_content_or_position_gets_another_id() -> None:
    a = with_deterministic_ids("customer-1", StreamState.NO_STREAM, [NewEvent(type="t", data=b"a")])
    b = with_deterministic_ids("customer-1", StreamState.NO_STREAM, [NewEvent(type="t", data=b"x")])
    c = with_deterministic_ids("customer-1", 0, [NewEvent(type="t", data=b"a")])
    d = with_deterministic_ids("customer-2", StreamState.NO_STREAM, [NewEvent(type="t", data=b"a")])
    assert len({a[0].id, b[0].id, c[0].id, d[0].id}) == 4
