"""The auto-reply policy: acknowledge each new case opened from an email or a web form.

Shaped like the work policies (``touchstream.work_policies``, which run it in the same
pass and under the same fleet lease): the auto-replies read model is caught up, asked
which cases opened from an inbound touchpoint are still undecided, and one
``AcknowledgeCase`` is sent per case, keyed by the event that opened it — so its
Message-ID is derived from that event and a second pass, a second process or a crash
between command and read model never sends twice. The loop rules (RFC 3834) are
``domain.replies``'s; this module only gathers their facts: the inbound message's
``Auto-Submitted``, ``Precedence``, ``List-Id`` and ``Return-Path`` headers, read from
the raw message kept in the blob store (an email recorded without its raw bytes is
judged by its sender alone), whether the address bounced, and when it was last
answered. The reply goes out through the outbox, threaded to the inbound message.

When the hub has a public address (``TOUCHSTREAM_PUBLIC_BASE_URL``) the template also
gets ``status_link``: the case's signed, expiring self-service link
(``commands.case_links``), so the customer can follow the case and answer on it without
an account. A template uses it as ``{% if status_link is defined %}…{% endif %}``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from email import policy
from email.parser import BytesHeaderParser
from uuid import UUID

from channels.blobs import BlobNotFoundError, BlobUnreadableError
from commands.case_links import status_link_for
from commands.errors import CommandError
from commands.replies import AcknowledgeCase
from domain.errors import DomainError
from projections.auto_replies.projection import AutoRepliesProjection
from projections.auto_replies.view import AutoRepliesView
from touchstream.bootstrap import Dependencies, forms_secret

log = logging.getLogger("touchstream.auto_replies")
ACTOR = "auto-reply-policy"
LOOP_HEADERS = ("Auto-Submitted", "Precedence", "List-Id", "Return-Path")
BATCH = 200


def loop_headers(raw: bytes) -> dict[str, str]:
    """The headers the loop rules read, from a raw message (headers only are parsed)."""
    parsed = BytesHeaderParser(policy=policy.compat32).parsebytes(raw)
    return {name: str(parsed[name])[:2000] for name in LOOP_HEADERS if parsed[name] is not None}


class AutoReplies:
    """One pass: acknowledge (or record why not) every undecided new case."""

    def __init__(self, deps: Dependencies, clock: Callable[[], datetime]) -> None:
        self.deps = deps
        self.clock = clock
        self.projection = AutoRepliesProjection()
        self.view = AutoRepliesView(deps.read_store)
        self._secret: str | None = None

    def run_once(self, now: datetime | None = None, *,
                 from_address: str | None = None) -> tuple[int, int, list[str]]:
        """(acknowledged, withheld, refusals) of one pass; nothing when no From is set
        (``from_address`` stands in for the setting: the demo's seeding)."""
        cfg = self.deps.settings.work
        from_address = from_address or cfg.auto_ack_from
        if not from_address:
            return 0, 0, []
        now = now or self.clock()
        self.deps.catch_up(self.projection)
        sent = withheld = 0
        refused: list[str] = []
        answered: dict[str, datetime] = {}  # recipients answered in this pass
        naming = self.deps.hub.context.naming
        base_url = self.deps.settings.core.public_base_url
        if base_url and self._secret is None:  # once: on PostgreSQL it is a fleet-table read
            self._secret = forms_secret(self.deps.settings)
        secret = self._secret or ""
        for case in self.view.pending(now - timedelta(hours=cfg.auto_ack_max_age_hours), BATCH):
            sender = case["sender"]
            key = naming.digest(f"auto-reply-to:{(sender or '').strip().lower()}")
            last = answered.get(key) or self.view.last_replied(key)
            refs = list(case["references"])
            if case["message_id"] and case["message_id"] not in refs:
                refs.append(case["message_id"])
            cmd = AcknowledgeCase(
                customer_id=UUID(case["customer_id"]), case_id=UUID(case["case_id"]),
                trigger_event_id=UUID(case["trigger_event_id"]), template=cfg.auto_ack_template,
                from_address=from_address, to=sender or "unknown",
                in_reply_to=case["message_id"], references=refs[-200:],
                headers=self._headers(case["raw_ref"]), bounced=case["bounced"],
                last_replied_at=last, window_days=cfg.auto_ack_window_days,
                variables=self._variables(case, now, base_url, secret), occurred_at=now,
                actor=ACTOR,
                causation_id=case["trigger_event_id"])
            try:
                recorded = self.deps.hub.execute(cmd)
            except (DomainError, CommandError) as exc:
                refused.append(f"{cmd.default_source_key()}: {exc}")
                log.warning("auto-reply refused for case %s: %s", case["case_id"], exc)
                continue
            if recorded.duplicate or not recorded.event_ids:
                continue
            if len(recorded.event_ids) > 1:  # the email, its template mark, the auto-reply mark
                sent += 1
                answered[key] = now
            else:
                withheld += 1
        return sent, withheld, refused

    @staticmethod
    def _variables(case: dict, now: datetime, base_url: str, secret: str) -> dict[str, str]:
        variables = {"subject": case["subject"][:5000]}
        if base_url:
            variables["status_link"] = status_link_for(
                secret, UUID(case["case_id"]), UUID(case["customer_id"]), now,
                base_url=base_url)
        return variables

    def _headers(self, raw_ref: str | None) -> dict[str, str]:
        if raw_ref is None:
            return {}
        try:
            return loop_headers(self.deps.blobs.get(raw_ref))
        except (BlobNotFoundError, BlobUnreadableError) as exc:
            log.warning("auto-reply: raw message %s unreadable (%s): judged by sender", raw_ref,
                        exc)
            return {}
