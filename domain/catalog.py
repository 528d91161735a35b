"""Every event class of a customer's stream, wherever its business area defines it.

The core events are nested in ``Customer``; each business area (sales,
service, dispatch…) defines its events in its own module as subclasses of
``Customer.BusinessEvent`` and is listed here once. The personal-data table,
the timeline's kinds and the privacy layer's topic checks all walk this
catalogue, so an area's events are classified, encrypted and projected like
the core ones.
"""

from __future__ import annotations

# Each business area's module, imported so its events exist (one name per area).
from domain import accounts, dispatch, knowledge, marketing, replies, sales, service, territories, work
from domain.customer import Customer

AREA_MODULES: tuple[str, ...] = tuple(
    m.__name__ for m in (accounts, sales, marketing, service, dispatch, work, knowledge, replies,
                         territories))


def customer_event_classes() -> list[type[Customer.Event]]:
    """Every concrete event class of a customer's stream (core first, then areas), once."""
    found: list[type[Customer.Event]] = []
    stack: list[type] = [Customer.Event]
    while stack:
        cls = stack.pop(0)
        for sub in cls.__subclasses__():
            if sub not in found and sub is not Customer.BusinessEvent and _ours(sub):
                found.append(sub)
            stack.append(sub)
    # ``Customer.Created`` is the library's default creation event, never triggered.
    return [c for c in found if c is not Customer.Created]


def _ours(cls: type) -> bool:
    module = cls.__module__
    return module == "domain.customer" or module in AREA_MODULES
