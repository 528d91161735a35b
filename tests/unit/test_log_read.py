"""``EventSource.read_log``: the engine's batches read straight from the library's SQLite
table must be the entries ``read`` gives (same fields, values and types), decode to the
same events, and never bypass a subclass's own ``read``."""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from commands.hub import Hub
from projections.engine import EventSource
from touchstream import settings as settings_mod
from touchstream.bench.history import add_business, add_touchpoints, new_customer
from touchstream.bootstrap import Dependencies
from touchstream.wiring import build_hub

FIELDS = ("id", "originator_id", "originator_version", "topic", "state")


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EventSource]:
    data: Path = tmp_path_factory.mktemp("log-read")
    settings = settings_mod.load({"TOUCHSTREAM_DATA": str(data),
                                  "TOUCHSTREAM_DEFAULT_REGION": "GB"})
    hub: Hub = build_hub(settings)
    rnd = random.Random(7)
    for k in range(3):
        customer = new_customer(hub, f"Customer {k}", rnd)
        add_touchpoints(hub, customer, 12, rnd)
        add_business(hub, customer, 4, rnd)
    src = Dependencies(settings, hub=hub).event_source()
    yield src
    src.close()
    hub.close()


def _fields(entries: Sequence[Any]) -> list[tuple[Any, ...]]:
    return [tuple(getattr(n, f) for f in FIELDS) for n in entries]


@pytest.mark.parametrize(("after", "limit", "stop"),
                         [(0, 1000, None), (3, 10, None), (5, 1000, 20), (7, 4, 9),
                          (10_000, 10, None), (20, 1000, 20)])
def test_read_log_gives_the_entries_read_gives(source: EventSource, after: int, limit: int,
                                               stop: int | None) -> None:
    assert source._sqlite_table() is not None  # the fast path is the one under test
    expected, got = source.read(after, limit, stop), source.read_log(after, limit, stop)
    assert _fields(got) == _fields(expected)
    assert [type(n.originator_id) for n in got] == [type(n.originator_id) for n in expected]
    decoded = [(p, type(e), vars(e)) for p, e in source.decode(got)]
    assert decoded == [(p, type(e), vars(e)) for p, e in source.decode(expected)]
    assert len(expected) == min(limit, max(0, (stop or source.head()) - after))


def test_a_subclass_read_is_never_bypassed(source: EventSource) -> None:
    class Shifted(EventSource):
        def read(self, after: int, limit: int, stop: int | None = None) -> Sequence[Any]:
            return super().read(after + 5, limit, stop)

    shifted = Shifted(source.recorder, source.mapper)
    assert shifted._sqlite_table() is None
    assert _fields(shifted.read_log(0, 3)) == _fields(source.read(5, 3))
