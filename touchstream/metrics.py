"""``GET /metrics``: Prometheus text format (``prometheus-client``), for a ``monitoring`` key.

What is measured (every name starts ``touchstream_``):

================================================  =============================================
``http_requests_total{route,method,status}``      requests by route *template* and status
``http_request_duration_seconds{route,method}``   latency histogram
``commands_total{kind,outcome}``                  ``Hub.execute`` and the webhooks' group
                                                  commit: recorded, duplicate, held, refused
                                                  (a domain rule), failed
``events_appended_total``                         events this fleet appended (all paths)
``imap_messages_total{outcome}``                  email, fax, bounce, quarantine, duplicate
``smtp_deliveries_total{outcome}``                sent, suppressed, failed, unknown
``webhook_rejects_total{route,status}``           webhook/form requests answered 4xx
``event_log_head``                                the newest position in the event log
``projection_position{projection}``               each live read model's position
``projection_lag_events{projection}``             events not yet applied
``quarantine_waiting{source="cdr"}``              call records waiting in quarantine
================================================  =============================================

Counters are per process; the store figures (head, positions, lag, quarantine) are read
from the stores at scrape time, so every process answers the same.

**Protection.** The route needs an API key with the ``monitoring`` role (or ``admin``):
Prometheus sends it with ``authorization: {credentials_file: …}``. A separate port was
the other choice; it would need its own bind address, firewall rule and TLS on every
host, and with ``--workers N`` the supervisor (which serves no requests) would have to
serve it. Route templates, counts and positions are all it shows — no ids.

**Several worker processes.** ``touchstream serve --workers N`` runs N processes behind
one port, and a scrape reaches any one of them. ``serve`` therefore switches on
prometheus-client's multiprocess mode: each worker writes its counters to files in
``PROMETHEUS_MULTIPROC_DIR`` (a fresh temporary folder per ``serve``, removed when it
stops), and whichever worker answers a scrape sums them all. Per-process labels were
the alternative; they would make every query sum over a ``pid`` label that changes at
each restart. Separate hosts are separate scrape targets (``instance`` label), as usual.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from domain.errors import DomainError

if TYPE_CHECKING:
    from channels.email.inbound import InboundMail
    from channels.email.outbound import SmtpSender
    from channels.phone.group_commit import GroupCommit
    from commands.hub import Hub
    from touchstream.bootstrap import Dependencies

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
#: Paths whose 4xx answers count as webhook rejects (bad signature, rate limit, bad form).
WEBHOOK_PREFIXES = ("/webhooks/", "/forms/")
_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def multiprocess() -> bool:
    """True when this process writes its counters for a multiprocess scrape."""
    return bool(os.environ.get(MULTIPROC_ENV))


class Metrics:
    """One process's counters, in their own registry (nothing global, nothing at import)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter("touchstream_http_requests", "HTTP requests answered",
                                ["route", "method", "status"], registry=r)
        self.latency = Histogram("touchstream_http_request_duration_seconds",
                                 "HTTP request latency", ["route", "method"],
                                 buckets=_BUCKETS, registry=r)
        self.commands = Counter("touchstream_commands", "Commands run by the write model",
                                ["kind", "outcome"], registry=r)
        self.events = Counter("touchstream_events_appended", "Events appended to the log",
                              registry=r)
        self.imap = Counter("touchstream_imap_messages", "Messages the IMAP follower took in",
                            ["outcome"], registry=r)
        self.smtp = Counter("touchstream_smtp_deliveries", "SMTP delivery attempts",
                            ["outcome"], registry=r)
        self.webhook_rejects = Counter("touchstream_webhook_rejects",
                                       "Webhook and form requests answered 4xx",
                                       ["route", "status"], registry=r)

    def observe_request(self, route: str, method: str, status: int, seconds: float,
                        path: str) -> None:
        self.requests.labels(route, method, str(status)).inc()
        self.latency.labels(route, method).observe(seconds)
        if 400 <= status < 500 and path.startswith(WEBHOOK_PREFIXES):
            self.webhook_rejects.labels(route, str(status)).inc()

    # ------------------------------------------------------------- instrumenting

    def instrument_hub(self, hub: Hub) -> Hub:
        """Count commands (``execute``) and appended events (the recorder, every path)."""
        from touchstream import logs

        execute = hub.execute
        recorder = hub.recorder
        insert = recorder.insert_events

        def counted_execute(command: Any) -> Any:
            kind = type(command).__name__
            try:
                result = execute(command)
            except DomainError:
                self.commands.labels(kind, "refused").inc()
                raise
            except Exception:
                self.commands.labels(kind, "failed").inc()
                raise
            outcome = ("duplicate" if result.duplicate else
                       "held" if result.held_for_triage else "recorded")
            self.commands.labels(kind, outcome).inc()
            logs.note_customer(result.customer_id)
            return result

        def counted_insert(stored_events: Any, **kwargs: Any) -> Any:
            result = insert(stored_events, **kwargs)
            self.events.inc(len(stored_events))
            return result

        hub.execute = counted_execute  # type: ignore[method-assign]
        recorder.insert_events = counted_insert  # type: ignore[method-assign]
        return hub

    def instrument_committer(self, committer: GroupCommit) -> GroupCommit:
        """Count the commands the webhooks' group commit records (a batched path that
        does not go through ``Hub.execute``)."""
        submit = committer.submit

        def counted(cmd: Any, place: Any = None, waiter: Any = None) -> Any:
            future = submit(cmd, place, waiter)
            kind = type(cmd).__name__

            def done(f: Any) -> None:
                if f.exception() is not None:
                    outcome = "failed"
                else:
                    result = f.result().recorded
                    outcome = ("refused" if result is None else "duplicate" if result.duplicate
                               else "held" if result.held_for_triage else "recorded")
                self.commands.labels(kind, outcome).inc()

            future.add_done_callback(done)
            return future

        committer.submit = counted  # type: ignore[method-assign]
        return committer

    def instrument_inbound(self, mail: InboundMail) -> InboundMail:
        record_batch = mail.record_batch

        def counted(items: Any, **kw: Any) -> Any:
            outcomes = record_batch(items, **kw)
            for o in outcomes:
                self.imap.labels("duplicate" if o.duplicate else o.kind).inc()
            return outcomes

        mail.record_batch = counted  # type: ignore[method-assign]
        return mail

    def instrument_sender(self, sender: SmtpSender) -> SmtpSender:
        deliver = sender.deliver

        async def counted(item: Any) -> str:
            outcome = await deliver(item)
            self.smtp.labels(outcome).inc()
            return outcome

        sender.deliver = counted  # type: ignore[method-assign]
        return sender

    # ------------------------------------------------------------------ scraping

    def exposition(self, stores: Collector) -> bytes:
        """The text a scrape gets: this process's counters (every worker's, in
        multiprocess mode) and the store figures."""
        # a registry per scrape: concurrent scrapes share nothing but the counters
        registry = CollectorRegistry(auto_describe=False)
        if multiprocess():
            MultiProcessCollector(registry)
        else:
            registry.register(_Collected(self.registry))
        registry.register(stores)
        return generate_latest(registry)


class _Collected(Collector):
    """Another registry's metrics, as one collector."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry

    def collect(self) -> Iterator[Any]:
        return self.registry.collect()


class StoreCollector(Collector):
    """Figures read from the stores at scrape time (the same from every process)."""

    def __init__(self, deps: Dependencies) -> None:
        self.deps = deps

    def collect(self) -> Iterator[GaugeMetricFamily]:
        from projections.status import status

        head = self.deps.hub.recorder.max_notification_id() or 0
        yield GaugeMetricFamily("touchstream_event_log_head",
                                "Newest position in the event log", value=head)
        position = GaugeMetricFamily("touchstream_projection_position",
                                     "Position of each live read model", labels=["projection"])
        lag = GaugeMetricFamily("touchstream_projection_lag_events",
                                "Events not yet applied by each live read model",
                                labels=["projection"])
        db = self.deps.read_store.connect()
        try:
            rows = status(db, head)
        finally:
            db.close()
        for row in rows:
            if row.live:
                position.add_metric([row.name], row.position)
                lag.add_metric([row.name], row.lag_events)
        yield position
        yield lag
        waiting = GaugeMetricFamily("touchstream_quarantine_waiting",
                                    "Items waiting in a quarantine", labels=["source"])
        waiting.add_metric(["cdr"], self.deps.cdr_quarantine.waiting())
        yield waiting


def timer() -> Callable[[], float]:
    """Seconds since the call, for request latency."""
    started = time.perf_counter()
    return lambda: time.perf_counter() - started
