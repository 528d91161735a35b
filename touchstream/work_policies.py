"""The work policies: follow-up tasks after a trigger, routing of new work by rule.

A policy reacts to events the way the outbox sender does: the work read model
(``projections.work``, kept by the projection runner like every read model)
is caught up to the log head, the policy asks it what is still to do —
triggers no follow-up task answers yet, open items nobody was assigned and the
rules have not seen — and sends one command per item. Each command's source
key derives from the triggering event or the item (``create-follow-up:<event
id>:<rule>``, ``route-work:<kind>:<id>``), so a pass that runs twice, two
processes, or a crash between command and read model never record anything
twice. Nothing is sent from a projection's ``apply``: a rebuild re-reads the
recorded outcomes and sends nothing.

``touchstream serve`` runs it in a thread (one process in the fleet holds the
``work-policies:all`` lease, taken over when its host dies, as the IMAP
follower's is); ``touchstream tasks react`` runs one pass.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from uuid import UUID

from commands.errors import CommandError
from commands.work import CreateFollowUp, RouteWork, policy_of
from domain.errors import DomainError
from projections.work.projection import WorkProjection
from projections.work.view import WorkView
from touchstream.auto_replies import AutoReplies
from touchstream.bootstrap import Dependencies
from touchstream.territory_moves import TerritoryMoves

log = logging.getLogger("touchstream.work")
ACTOR = "work-policy"
#: Triggers older than this are not followed up (turning a rule on must not flood
#: the staff with tasks for the whole history).
FOLLOW_UP_WINDOW = timedelta(days=30)
BATCH = 200


@dataclass
class PolicyPass:
    """What one pass did."""

    follow_ups: int = 0
    routed: int = 0
    acknowledged: int = 0
    withheld: int = 0
    territory_moves: int = 0
    refused: list[str] = field(default_factory=list)


class WorkPolicies:
    """The follow-up and routing policies over the hub's work read model."""

    def __init__(self, deps: Dependencies,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.deps = deps
        self.clock = clock
        self.projection = WorkProjection()
        self.view = WorkView(deps.read_store)
        self.auto_replies = AutoReplies(deps, clock)
        self.territory_moves = TerritoryMoves(deps)

    def refresh(self) -> None:
        self.deps.catch_up(self.projection)

    def run_once(self, now: datetime | None = None) -> PolicyPass:
        """Catch up, then create the follow-ups due, route the unrouted items, acknowledge
        new cases (``touchstream.auto_replies``) and move the opportunities of reassigned
        territories (``touchstream.territory_moves``)."""
        now = now or self.clock()
        self.refresh()
        done = PolicyPass()
        policy = policy_of(self.deps.hub)
        for rule in policy.follow_ups:
            for t in self.view.pending_follow_ups(rule.trigger, rule.name,
                                                  now - FOLLOW_UP_WINDOW, BATCH):
                cmd = CreateFollowUp(
                    customer_id=UUID(t["customer_id"]), rule=rule.name, trigger=rule.trigger,
                    origin_event_id=UUID(t["event_id"]), link_id=UUID(t["link_id"]),
                    triggered_at=datetime.fromisoformat(t["occurred_at"]), occurred_at=now,
                    actor=ACTOR, causation_id=t["event_id"])
                done.follow_ups += self._send(cmd, done)
        if policy.rules:
            loads, turns = self.view.loads(), self.view.turns()
            for item in self.view.unrouted(BATCH):
                cmd = RouteWork(
                    customer_id=UUID(item["customer_id"]), item_kind=item["item_kind"],
                    item_id=UUID(item["item_id"]), channel=item["channel"],
                    category=item["category"], loads=loads, turns=turns, occurred_at=now,
                    actor=ACTOR)
                if self._send(cmd, done):
                    done.routed += 1
                    # later items of this pass see this one's assignment
                    self.refresh()
                    loads, turns = self.view.loads(), self.view.turns()
        done.acknowledged, done.withheld, refused = self.auto_replies.run_once(now)
        done.refused += refused
        done.territory_moves, refused = self.territory_moves.run_once(now)
        done.refused += refused
        return done

    def _send(self, cmd: CreateFollowUp | RouteWork, done: PolicyPass) -> int:
        try:
            recorded = self.deps.hub.execute(cmd)
        except (DomainError, CommandError) as exc:  # e.g. the customer was merged meanwhile
            done.refused.append(f"{cmd.kind} {cmd.default_source_key()}: {exc}")
            log.warning("work policy: %s refused: %s", cmd.kind, exc)
            return 0
        return 0 if recorded.duplicate or not recorded.event_ids else 1

    def follow(self, stop: threading.Event) -> None:
        """Run passes until ``stop``; an error is logged and the pass retried later."""
        pause = self.deps.settings.work.poll_seconds
        while not stop.is_set():
            try:
                self.run_once()
            except Exception:
                log.exception("work policy pass failed; retrying in %.1f s", pause)
            stop.wait(pause)


class WorkPolicyService:
    """The work policies in a thread beside the API (``touchstream serve``)."""

    def __init__(self, deps: Dependencies) -> None:
        self.deps = deps
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="touchstream-work-policies",
                                        daemon=True)
        self._thread.start()

    def _run(self) -> None:
        from touchstream.fleet import wiring as fleet
        from touchstream.fleet.leases import LeaseGroup

        policies = WorkPolicies(self.deps)
        group = LeaseGroup(self.deps.leases, "work-policies:", ["all"],
                           fleet.lease_owner(self.deps.settings), self.deps.settings.fleet.lease)
        group.run(self._stop, lambda _owned, round_over: policies.follow(round_over))

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)


def work_services(deps: Dependencies) -> list[WorkPolicyService]:
    return [WorkPolicyService(deps)] if deps.settings.work.policies else []
