"""``touchstream analytics cohorts|value|tiers|rfm``: retention cohorts and customer value.

The same figures as ``GET /analytics/cohorts``, ``/analytics/value``,
``/analytics/value/tiers`` and ``/analytics/rfm`` (``read_api.analytics_value``), from
the ``value`` read model, with the settings ``TOUCHSTREAM_VALUE_*`` (RFM's currency:
``TOUCHSTREAM_SALES_RFM_CURRENCY``). ``--until`` is the day the figures are as of,
``--as-of`` leaves out what was recorded after that day, ``--from`` bounds the
cohorts shown, the tiers' revenue and the RFM period. ``cohorts --plot out.png`` draws
the triangle as a heatmap (share of each cohort active).
"""

from __future__ import annotations

import argparse
from typing import Any

from domain.sales import currency_code
from projections.value.figures import (
    COHORT_COLUMNS,
    RFM_COLUMNS,
    TIER_COLUMNS,
    VALUE_COLUMNS,
    cohorts_doc,
    rfm_doc,
    tiers_doc,
    value_doc,
)
from projections.value.view import ValueView
from touchstream import settings as settings_mod
from touchstream.cli import plotting
from touchstream.cli.analytics import add_output_flags, add_window_flags, emit, quiet, window_of
from touchstream.cli.errors import CliError
from touchstream.cli.reading import read_models


def register(asub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = asub.add_parser("cohorts", help="retention and churn cohorts (the triangle)")
    add_window_flags(p)
    add_output_flags(p)
    p.set_defaults(func=_cohorts)
    p = asub.add_parser("value", help="historic customer lifetime value per customer")
    add_window_flags(p)
    add_output_flags(p, plot=False)
    _paging(p)
    p.set_defaults(func=_value)
    p = asub.add_parser("tiers", help="the value pyramid: key, major, ordinary, small")
    add_window_flags(p)
    add_output_flags(p, plot=False)
    p.set_defaults(func=_tiers)
    p = asub.add_parser("rfm", help="RFM quintiles per customer over the window")
    add_window_flags(p)
    add_output_flags(p, plot=False)
    _paging(p)
    p.add_argument("--currency", help="default TOUCHSTREAM_SALES_RFM_CURRENCY")
    p.set_defaults(func=_rfm)


def _paging(p: argparse.ArgumentParser) -> None:
    p.add_argument("--offset", type=int, default=0, help="rows to skip")
    p.add_argument("--limit", type=int, default=100, help="rows (1–500)")


def _page(args: argparse.Namespace) -> tuple[int, int]:
    if not 0 <= args.offset <= 1_000_000 or not 1 <= args.limit <= 500:
        raise CliError("--offset must be 0–1000000 and --limit 1–500")
    return args.offset, args.limit


def _cohorts(args: argparse.Namespace) -> int:
    w = window_of(args)
    policy = settings_mod.load().value.policy()
    with read_models(quiet=quiet(args)) as store:
        doc = cohorts_doc(ValueView(store), w, policy)
    return emit(args, doc, COHORT_COLUMNS, plot=lambda path: _heatmap(path, doc))


def _heatmap(path: str, doc: dict[str, Any]) -> None:
    if not doc["rows"]:
        raise CliError("no cohort in this window: nothing to draw (widen --from)")
    cohorts = sorted({r["cohort"] for r in doc["rows"]})
    width = 1 + max(r["period"] for r in doc["rows"])
    share = {(r["cohort"], r["period"]): r["share"] for r in doc["rows"]}
    plotting.heatmap(path, cohorts, [str(k) for k in range(width)],
                     [[share.get((c, k)) for k in range(width)] for c in cohorts],
                     title=f"Active share of each cohort (churn after "
                           f"{doc['churn_window_months']} silent months)",
                     xlabel="months since first purchase", ylabel="cohort")


def _value(args: argparse.Namespace) -> int:
    w, (offset, limit) = window_of(args), _page(args)
    policy = settings_mod.load().value.policy()
    with read_models(quiet=quiet(args)) as store:
        doc = value_doc(ValueView(store), w, policy, offset, limit)
    return emit(args, doc, VALUE_COLUMNS)


def _tiers(args: argparse.Namespace) -> int:
    w = window_of(args)
    policy = settings_mod.load().value.policy()
    with read_models(quiet=quiet(args)) as store:
        doc = tiers_doc(ValueView(store), w, policy)
    return emit(args, doc, TIER_COLUMNS)


def _rfm(args: argparse.Namespace) -> int:
    w, (offset, limit) = window_of(args), _page(args)
    try:
        currency = currency_code(args.currency) if args.currency else \
            settings_mod.load().sales.rfm_currency
    except ValueError as exc:
        raise CliError(str(exc)) from exc
    with read_models(quiet=quiet(args)) as store:
        doc = rfm_doc(ValueView(store), w, currency, offset, limit)
    return emit(args, doc, RFM_COLUMNS)
