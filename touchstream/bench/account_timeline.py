"""The account page figure of ``touchstream bench timeline``: an account with many
contacts, each with a long history, paged at the read model like the route does.

Set-up writes straight through the aggregates (``hub.save``), as the customer
part of the bench does: the account, ``--account-contacts`` people linked to it
(half of them joined half-way through their history, a tenth left again), each
with ``--account-touchpoints`` touchpoints. Measured: ``resolve`` + ``page(limit=50)``
walking the account timeline from newest to oldest with cursors (p50/p99),
the same as the customer page figure.
"""

from __future__ import annotations

import random
import statistics
import time
from datetime import timedelta
from typing import Any
from uuid import uuid4

from commands.hub import Hub
from domain.accounts import Account
from projections.accounts.view import AccountsView
from projections.store import ReadStore
from projections.timeline.view import Cursor
from touchstream.bench.history import T0, add_touchpoints, new_customer

DEFAULT_CONTACTS = 500
DEFAULT_TOUCHPOINTS = 200  # per contact: 100,000 in all (the 1,000,000: 2000)


def _prov(n: int, at: Any) -> dict[str, Any]:
    return {"event_id": uuid4(), "occurred_at": at, "actor": "bench",
            "key_digest": f"bench:account:{n}"}


def set_up(hub: Hub, contacts: int, touchpoints: int, rnd: random.Random,
           progress: Any = None) -> str:
    """The account's id, once its contacts and their histories are saved."""
    account = Account.open(uuid4(), _prov(0, T0), name="Bench Holdings Ltd")
    hub.save(account)
    for k in range(contacts):
        person = new_customer(hub, f"Contact {k}", rnd)
        add_touchpoints(hub, person, touchpoints, rnd)
        joined = T0 + (timedelta(days=touchpoints // 48) if k % 2 else timedelta(0))
        account.join(_prov(2 * k + 1, joined), str(uuid4()), str(person.id), "buyer", joined)
        if k % 10 == 9:
            account.leave(_prov(2 * k + 2, joined), str(person.id),
                          joined + timedelta(days=max(1, touchpoints // 96)))
        if progress is not None:
            progress(k + 1)
    hub.save(account)
    return account.account_id


def measure(store: ReadStore, account_id: str) -> dict[str, Any]:
    view = AccountsView(store)
    model: list[float] = []
    items = 0
    cursor = None
    while True:
        started = time.perf_counter()
        assert view.resolve(account_id) is not None
        page = view.page(account_id, limit=50, cursor=cursor)
        model.append(time.perf_counter() - started)
        items += len(page.items)
        if page.next_cursor is None:
            break
        cursor = Cursor.decode(page.next_cursor)
    ordered = sorted(model)
    return {"account_entries": items, "account_pages": len(model),
            "account_page_p50_ms": round(statistics.median(model) * 1e3, 3),
            "account_page_p99_ms": round(
                ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1e3, 3)}
