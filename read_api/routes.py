"""The read API: GET routes over the read models only (no aggregate is ever loaded).

One router per resource (``customers``, ``timeline``, ``events``, ``summary``,
``status``; ``screen_pop`` is mounted with the phone channel), all sharing
``read_api.dependencies``. ``read_routers(...)`` returns them, ``read_router(...)`` as
one router.

Access (``admin`` is admitted everywhere by ``authorize``):

| Route                                   | Roles                                                     |
|-----------------------------------------|-----------------------------------------------------------|
| GET /customers/{id}/timeline            | agent, sales, service, dispatcher, auditor, partner*      |
| GET /events/{event_id}, …/body          | agent, sales, service, dispatcher, auditor, partner*      |
| GET /customers/search, /customers/lookup| agent, sales, marketing, service, dispatcher, auditor, partner* |
| GET /customers/{id}/summary             | agent, sales, marketing, service, dispatcher, auditor, partner* |
| GET /projections/status                 | analyst, auditor                                          |
| GET /accounts, /accounts/{id}[/timeline], /customers/{id}/accounts | agent, sales, marketing, service, dispatcher, auditor, partner* (own accounts) |
| GET /quality/duplicates, /quality/completeness | analyst |
| GET /sales/…, /customers/{id}/opportunities, …/orders, …/rfm | sales, analyst, marketing (RFM), partner* (see read_api.sales) |
| GET /marketing/…                        | marketing, analyst; per customer see ``read_api.marketing`` |
| GET /dispatch/…, /call-centre/figures   | see ``read_api.dispatch``                                 |
| GET /analytics/…                        | analyst (see ``read_api.analytics_common``)               |
| GET /customers/{id}/contracts           | service, agent, dispatcher (see ``read_api.contracts``)   |
| GET /work/tasks, /work/day, /work/calendar, /work/supervisor, /sales/commissions | see ``read_api.work`` |
| GET /knowledge/articles[/{id}], /knowledge/deflection | see ``read_api.knowledge`` |
| GET /sales/territories, /service/auto-replies | see ``read_api.replies`` |

``*`` A partner key sees only customers whose (merge-root) customer is
assigned to its partner by a ``PartnerAssigned`` event; any other id answers
404 exactly like a missing one. What a partner sees of those is in
``read_api.partner`` (no internal notes anywhere, no staff names).
``adapter`` keys are write-only.

Read-your-writes: every route takes ``min_position`` (a command's
``position``); it waits up to ``wait_s`` for the read model to reach it, then
answers 503 (still behind, with ``Retry-After``); 409 when the position was
never recorded at all. Errors have the one shape of ``touchstream.http_errors``.

Read audit (``ReadAudit``): timeline and summary record the path's customer
before anything is read (a request refused for its key or its id records
nothing), and the root too when asked by a merged-away id; an event, a body and
each lookup hit are recorded as the customer they belong to, before the answer
is sent. A search page is not recorded. No record, no answer: 503.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter

from domain.sla import DEFAULT_CONFIG, SlaConfig, config_from_mapping
from domain.value import ValuePolicy
from domain.work import WorkPolicy
from read_api import (
    accounts,
    analytics_activity,
    analytics_value,
    contracts,
    customers,
    dispatch,
    events,
    knowledge,
    marketing,
    quality,
    replies,
    sales,
    service,
    status,
    summary,
    timeline,
    work,
)
from read_api.dependencies import (
    DIRECTORY_ROLES,
    STATUS_ROLES,
    SUMMARY_ROLES,
    TIMELINE_ROLES,
    ReadAudit,
    ReadDeps,
    ReadViews,
)

__all__ = ["DIRECTORY_ROLES", "STATUS_ROLES", "SUMMARY_ROLES", "TIMELINE_ROLES", "ReadAudit",
           "ReadViews", "read_router", "read_routers"]


def read_routers(
    views: ReadViews,
    authorize: Callable[..., Any],
    *,
    normalise_phone: Callable[[str], str],
    normalise_email: Callable[[str], str],
    audit: ReadAudit | None,
    log_head: Callable[[], int] | None = None,
    blob_reader: Callable[[str], bytes] | None = None,
    wait_s: float = 2.0,
    rfm_defaults: tuple[int, str] = (365, "EUR"),
    sla: SlaConfig | None = None,
    value_policy: ValuePolicy | None = None,
    work_policy: WorkPolicy | None = None,
) -> list[APIRouter]:
    """Every read router, one per resource. ``authorize(*roles)`` returns a dependency
    giving the caller's ``Principal`` (``role``, ``partner_id``); ``log_head`` tells a
    future position (409) from a lagging read model (503); ``audit`` records each read of
    a customer's data (None: nothing is recorded, for tests of the routes alone);
    ``rfm_defaults``: the RFM period (days) and currency when a request names none
    (``read_api.sales``)."""
    deps = ReadDeps(views, authorize, log_head=log_head, wait_s=wait_s, audit=audit)
    sla = sla or config_from_mapping(DEFAULT_CONFIG)
    return [
        customers.router(deps, normalise_phone=normalise_phone,
                         normalise_email=normalise_email),
        timeline.router(deps),
        events.router(deps, blob_reader),
        summary.router(deps, sla),
        status.router(deps),
        accounts.router(deps),
        quality.router(deps),
        sales.router(deps, rfm_period_days=rfm_defaults[0], rfm_currency=rfm_defaults[1]),
        marketing.router(deps, rfm_period_days=rfm_defaults[0],
                         rfm_currency=rfm_defaults[1]),
        service.router(deps, sla),
        contracts.router(deps),
        dispatch.router(deps),
        analytics_activity.router(deps, sla),
        analytics_value.router(deps, value_policy, rfm_defaults[1]),
        work.router(deps, work_policy or WorkPolicy()),
        knowledge.router(deps),
        replies.router(deps, work_policy or WorkPolicy()),
    ]


def read_router(views: ReadViews, authorize: Callable[..., Any], **options: Any) -> APIRouter:
    """``read_routers(...)`` as one router (the served app includes them one by one, so
    its route index can skip those that cannot match a path)."""
    router = APIRouter()
    for each in read_routers(views, authorize, **options):
        router.include_router(each)
    return router
