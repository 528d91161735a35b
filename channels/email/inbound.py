"""One raw message → the commands that record it: email, fax, bounce, or quarantine.

Only translation happens here: who the customer is, dedup and threading are
the write model's business. The source key of a message survives UID
renumbering: ``msg:<sha256 of the raw bytes>[:<Message-ID>]`` (two messages
with one Message-ID and different bytes are two messages; one message seen
twice is one).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from pydantic import ValidationError

from channels.blobs import BlobStore
from channels.email.config import InboundRules
from channels.email.parse import MessageRejectedError, ParsedEmail, parse_message
from commands import messages as m
from commands.hub import CustomerNotFoundError, HeldForTriageError
from commands.ports import Recorded
from domain.errors import DomainError

_NUMBER = re.compile(r"\+?\d[\d ()./-]{4,}\d")
FAX_TYPES = ("application/pdf", "image/tiff", "image/tif")
MAX_LIST = 200


class CommandSink(Protocol):
    """The write model as the channel sees it."""

    def execute(self, command: m.Command) -> Recorded: ...

    def source_key_of(self, command: m.Command) -> str: ...


@dataclass(frozen=True)
class Origin:
    """Where a message was read from."""

    account: str
    folder: str
    uidvalidity: int | None = None
    uid: int | None = None
    received_at: datetime | None = None


@dataclass(frozen=True)
class Outcome:
    """What one message became: its kind and the source keys it was recorded under."""

    kind: str  # email | fax | bounce | quarantine
    source_keys: list[str] = field(default_factory=list)
    duplicate: bool = False
    detail: str = ""


def message_key(raw: bytes, message_id: str | None) -> str:
    digest = hashlib.sha256(raw).hexdigest()
    if message_id and len(message_id) <= 400:
        return f"msg:{digest}:{message_id}"
    return f"msg:{digest}"


class InboundMail:
    """Turns raw messages into recorded touchpoints; never loses one."""

    def __init__(
        self,
        sink: CommandSink,
        blobs: BlobStore,
        rules: InboundRules,
        *,
        actor: str = "imap",
        envelope_lookup: Callable[[str], str | None] | None = None,
    ) -> None:
        self.sink = sink
        self.blobs = blobs
        self.rules = rules
        self.actor = actor
        self.envelope_lookup = envelope_lookup

    # ------------------------------------------------------------------ entry points
    def record(self, raw: bytes, origin: Origin) -> Outcome:
        """Record one message read in full."""
        if len(raw) > self.rules.max_bytes:
            return self.record_oversized(raw.split(b"\r\n\r\n", 1)[0][:65536], len(raw), origin)
        raw_ref = self.blobs.put(raw)
        try:
            parsed = parse_message(raw, self.rules.max_depth)
        except MessageRejectedError as exc:
            return self._quarantine(f"msg:{raw_ref}", origin, exc.reason, exc.detail,
                                    size=len(raw), raw_ref=raw_ref)
        key = message_key(raw, parsed.message_id)
        occurred = parsed.date or origin.received_at or datetime.now(UTC)
        sender = parsed.from_address
        if parsed.is_report:
            return self._bounce(parsed, key, raw_ref, occurred, origin, len(raw))
        if sender is None:
            return self._quarantine(key, origin, "no-customer", "no sender address",
                                    size=len(raw), raw_ref=raw_ref, message_id=parsed.message_id)
        if self.rules.is_fax_gateway(sender):
            return self._fax(parsed, key, occurred, origin, raw_ref, len(raw))
        return self._email(parsed, key, occurred, origin, raw_ref, len(raw))

    def record_oversized(self, header: bytes, size: int, origin: Origin) -> Outcome:
        """A message over the size limit: quarantined with its header block kept."""
        header_ref = self.blobs.put(header)
        key = f"msg:oversized:{header_ref}:{size}"
        return self._quarantine(
            key, origin, "oversized", f"{size} bytes > limit {self.rules.max_bytes}",
            size=size, header_ref=header_ref,
        )

    # ------------------------------------------------------------------ kinds
    def _email(
        self, p: ParsedEmail, key: str, occurred: datetime, origin: Origin, raw_ref: str, size: int
    ) -> Outcome:
        assert p.from_address is not None
        outbound = self.rules.is_staff(p.from_address)
        if outbound:
            customers = [a for a in [*p.to, *p.cc] if not self.rules.is_staff(a)]
            if not customers:
                return self._quarantine(key, origin, "no-customer", "staff-only recipients",
                                        size=size, raw_ref=raw_ref, message_id=p.message_id)
        else:
            customers = [p.from_address]
        body, body_ref = self._body(p.body_text)
        common = dict(
            occurred_at=occurred, actor=self.actor, direction="outbound" if outbound else "inbound",
            message_id=p.message_id or f"<{raw_ref}@touchstream.invalid>",
            in_reply_to=p.in_reply_to, references=p.references,
            from_address=p.from_address, to=p.to[:MAX_LIST], cc=p.cc[:MAX_LIST],
            subject=p.subject[:2000], body_text=body, body_ref=body_ref,
            attachments=self._attachments(p), raw_ref=raw_ref,
        )
        keys: list[str] = []
        duplicate = True
        problems: list[str] = []
        for i, address in enumerate(customers[:MAX_LIST]):
            sub_key = key if i == 0 else f"{key}#rcpt:{address.lower()}"
            try:
                cmd = m.RecordEmail(source_key=sub_key, email=address, **common)  # type: ignore[arg-type]
            except ValidationError as exc:
                return self._quarantine(key, origin, "invalid", _brief(exc), size=size,
                                        raw_ref=raw_ref, message_id=p.message_id)
            result, problem = self._run(cmd)
            if result is None:
                problems.append(problem)
                continue
            keys.append(self.sink.source_key_of(cmd))
            duplicate = duplicate and result.duplicate
        if not keys:
            reason, _, detail = problems[0].partition(":")
            return self._quarantine(key, origin, reason, detail.strip(), size=size,
                                    raw_ref=raw_ref, message_id=p.message_id)
        return Outcome("email", keys, duplicate, "; ".join(problems))

    def _fax(
        self, p: ParsedEmail, key: str, occurred: datetime, origin: Origin, raw_ref: str, size: int
    ) -> Outcome:
        number = _fax_number(p)
        doc = next((a for a in p.attachments if a.content_type in FAX_TYPES), None)
        if number is None:
            return self._quarantine(key, origin, "no-customer", "fax without a sender number",
                                    size=size, raw_ref=raw_ref, message_id=p.message_id)
        doc_ref = self.blobs.put(doc.data) if doc else None
        cmd = m.RecordFax(
            source_key=key, occurred_at=occurred, actor=self.actor, direction="inbound",
            fax_id=(p.message_id or raw_ref)[:500], from_number=number,
            to_number=None, pages=None, document_sha256=doc_ref,
            document_size=len(doc.data) if doc else None,
            content_type=doc.content_type if doc else None,
            status="complete" if doc else "failed",
        )
        return self._single("fax", cmd, key, origin, raw_ref, size, p.message_id)

    def _bounce(
        self, p: ParsedEmail, key: str, raw_ref: str, occurred: datetime, origin: Origin, size: int
    ) -> Outcome:
        original = p.original_message_id
        if original is None and p.envelope_id and self.envelope_lookup is not None:
            original = self.envelope_lookup(p.envelope_id)
        if original is None or not p.statuses:
            return self._quarantine(key, origin, "invalid",
                                    "delivery report without original Message-ID or recipients",
                                    size=size, raw_ref=raw_ref, message_id=p.message_id)
        keys: list[str] = []
        duplicate = True
        for i, status in enumerate(p.statuses[:MAX_LIST]):
            cmd = m.RecordEmailBounce(
                source_key=key if i == 0 else f"{key}#{i}", occurred_at=occurred,
                actor=self.actor, direction="inbound", original_message_id=original,
                recipient=status.recipient, action=status.action, status=status.status,
                diagnostic=(status.diagnostic or None) and status.diagnostic[:2000],  # type: ignore[index]
                report_message_id=p.message_id or f"<{raw_ref}@touchstream.invalid>",
                raw_ref=raw_ref,
            )
            result, problem = self._run(cmd)
            if result is None:
                reason, _, detail = problem.partition(":")
                return self._quarantine(key, origin, reason, detail.strip(), size=size,
                                        raw_ref=raw_ref, message_id=p.message_id)
            keys.append(self.sink.source_key_of(cmd))
            duplicate = duplicate and result.duplicate
        return Outcome("bounce", keys, duplicate)

    # ------------------------------------------------------------------ helpers
    def _single(
        self, kind: str, cmd: m.Touchpoint, key: str, origin: Origin, raw_ref: str, size: int,
        message_id: str | None,
    ) -> Outcome:
        result, problem = self._run(cmd)
        if result is None:
            reason, _, detail = problem.partition(":")
            return self._quarantine(key, origin, reason, detail.strip(), size=size,
                                    raw_ref=raw_ref, message_id=message_id)
        return Outcome(kind, [self.sink.source_key_of(cmd)], result.duplicate)

    def _run(self, cmd: m.Touchpoint) -> tuple[Recorded | None, str]:
        """Execute; a refusal becomes ``(None, "reason: detail")``. Store errors propagate."""
        try:
            return self.sink.execute(cmd), ""
        except HeldForTriageError as exc:
            return None, f"held-for-triage: {exc}"
        except CustomerNotFoundError as exc:
            return None, f"no-customer: {exc}"
        except (DomainError, ValidationError) as exc:
            return None, f"invalid: {exc}"

    def _quarantine(
        self, key: str, origin: Origin, reason: str, detail: str, *, size: int,
        raw_ref: str | None = None, header_ref: str | None = None, message_id: str | None = None,
    ) -> Outcome:
        cmd = m.QuarantineEmail(
            source_key=key, actor=self.actor, account=origin.account, folder=origin.folder,
            reason=reason, detail=detail[:2000],  # type: ignore[arg-type]
            message_id=message_id, uidvalidity=origin.uidvalidity, uid=origin.uid, size=size,
            raw_ref=raw_ref, header_ref=header_ref,
        )
        result = self.sink.execute(cmd)
        return Outcome("quarantine", [self.sink.source_key_of(cmd)], result.duplicate,
                       f"{reason}: {detail}")

    def _body(self, text: str) -> tuple[str | None, str | None]:
        if not text:
            return None, None
        if len(text) <= self.rules.body_cap:
            return text, None
        return text[: self.rules.body_cap], self.blobs.put(text.encode("utf-8"))

    def _attachments(self, p: ParsedEmail) -> list[m.Attachment]:
        out = []
        for part in p.attachments[:MAX_LIST]:
            out.append(m.Attachment(
                sha256=self.blobs.put(part.data), size=len(part.data),
                content_type=part.content_type[:500],
                filename=(part.filename or None) and part.filename[:500],  # type: ignore[index]
            ))
        return out


def _fax_number(p: ParsedEmail) -> str | None:
    found = _NUMBER.search(p.subject)
    if found:
        return found.group(0).strip()
    local = (p.from_address or "").partition("@")[0]
    digits = re.sub(r"[^\d+]", "", local)
    return digits if len(re.sub(r"\D", "", digits)) >= 6 else None


def _brief(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(x) for x in e['loc'])}: {e['msg']}" for e in exc.errors())[:2000]
