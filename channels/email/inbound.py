"""One raw message → the commands that record it: email, fax, bounce, or quarantine.

Only translation happens here: who the customer is and source-key dedup are
the write model's business. The source key of a message survives UID
renumbering: ``msg:<sha256 of the raw bytes>[:<Message-ID>]`` (two messages
with one Message-ID and different bytes are two messages; one message seen
twice is one). A mailbox migration that rewrites headers changes the raw
bytes: a message whose Message-ID, Date, From and body bytes are identical to
one already recorded is that message again (the ``MessageIndex`` remembers
the content key).

Threads follow the parent's recorded thread: the root of the first known
message among In-Reply-To and References (last first) becomes the first
reference, as RFC 5322 §3.6.4 builds References, so a reply carrying only
In-Reply-To joins its parent's thread. Bounces are routed by the Message-ID
of the mail the hub sent; a report about mail it never sent is quarantined
(``unmatched``), never a new prospect.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Protocol

from pydantic import ValidationError

from channels.blobs import BlobStore
from channels.email.config import InboundRules
from channels.email.parse import MessageRejectedError, ParsedEmail, parse_fetched, parse_message
from commands import email_messages as em
from commands import messages as m
from commands.hub import CustomerNotFoundError, HeldForTriageError
from commands.ports import Recorded
from domain.errors import DomainError

_NUMBER = re.compile(r"\+?\d[\d ()./-]{4,}\d")
FAX_TYPES = ("application/pdf", "image/tiff", "image/tif")
SAME_MESSAGE = "same message as recorded before, with rewritten headers"
MAX_LIST = 200


class CommandSink(Protocol):
    """The write model as the channel sees it."""

    def execute(self, command: m.Command) -> Recorded: ...

    def source_key_of(self, command: m.Command) -> str: ...


class BatchSink(Protocol):
    """A bulk path: records many touchpoints in few transactions, same dedup guarantees.

    Returns, per command and in order, what was recorded or why it was refused.
    """

    def execute_many(self, commands: Sequence[m.Touchpoint]) -> list[Recorded | str]: ...


@dataclass(frozen=True)
class Remembered:
    """What the channel keeps about one recorded message, for threading and dedup."""

    message_id: str
    root: str
    content_key: str | None
    source_key: str


class MessageIndex(Protocol):
    """Thread roots and content keys of the messages recorded so far."""

    def roots(self, message_ids: Sequence[str]) -> dict[str, str]: ...

    def same_contents(self, content_keys: Sequence[str]) -> dict[str, str]: ...

    def remember(self, entries: Sequence[Remembered]) -> None: ...


@dataclass(frozen=True)
class Origin:
    """Where a message was read from."""

    account: str
    folder: str
    uidvalidity: int | None = None
    uid: int | None = None
    received_at: datetime | None = None


class _NotParsed:
    """``Fetched.parsed`` when nobody parsed the message yet."""


NOT_PARSED = _NotParsed()


@dataclass(frozen=True)
class Fetched:
    """One message as read from the server: all of it, or only its header when oversized.

    ``parsed``: its ``parse_fetched`` with the channel's limits, when it was parsed as it
    was fetched (in the fetch-ahead worker); else it is parsed when recorded."""

    data: bytes
    size: int
    origin: Origin
    complete: bool = True
    parsed: ParsedEmail | MessageRejectedError | None | _NotParsed = NOT_PARSED


@dataclass(frozen=True)
class Outcome:
    """What one message became: its kind and the source keys it was recorded under."""

    kind: str  # email | fax | bounce | quarantine
    source_keys: list[str] = field(default_factory=list)
    duplicate: bool = False
    detail: str = ""


@dataclass
class _Plan:
    """The commands one message becomes, and the quarantine to fall back on."""

    kind: str
    commands: list[m.Command]
    fallback: Callable[[str, str], em.QuarantineEmail] | None = None
    remember: Remembered | None = None
    same_as: str | None = None  # recorded before under this key (a header-rewriting migration)
    same_as_plan: int | None = None  # ... or by an earlier message of this batch


def blob_owner(address: str) -> str:
    """Whose a stored copy is, as the channel knows them when it stores it: their address."""
    return f"email:{address.lower()}"


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
        sent_lookup: Callable[[str], str | None] | None = None,
        sent_roots: Callable[[Sequence[str]], dict[str, str]] | None = None,
        batch_sink: BatchSink | None = None,
        index: MessageIndex | None = None,
    ) -> None:
        """``envelope_lookup``: ENVID → Message-ID of mail the hub sent; ``sent_lookup``:
        Message-ID of mail the hub sent → its customer's id (None: not sent by the hub);
        ``sent_roots``: Message-IDs of mail the hub sent → their thread roots."""
        self.sink = sink
        self.blobs = blobs
        self.rules = rules
        self.actor = actor
        self.envelope_lookup = envelope_lookup
        self.sent_lookup = sent_lookup
        self.sent_roots = sent_roots
        self.batch_sink = batch_sink
        self.index = index
        self._batch_roots: dict[str, str] = {}
        self._batch_content: dict[str, int] = {}  # content key → index of its plan
        self._batch_blobs = blobs.batch()
        self._known_roots: dict[str, str] = {}  # recorded before this batch: index, sent mail
        self._known_content: dict[str, str] = {}

    # ------------------------------------------------------------------ entry points
    def record(self, raw: bytes, origin: Origin) -> Outcome:
        """Record one message read in full."""
        return self.record_batch([Fetched(raw, len(raw), origin)])[0]

    def record_oversized(self, header: bytes, size: int, origin: Origin) -> Outcome:
        """A message over the size limit: quarantined with its header block kept."""
        return self.record_batch([Fetched(header, size, origin, complete=False)])[0]

    def record_batch(self, items: Sequence[Fetched], *,
                     deferred: list[Remembered] | None = None) -> list[Outcome]:
        """Record messages (blobs first, then events); one outcome per message, in order.

        ``deferred``: what the index is to remember of the batch is added to this list
        instead of written, for a caller that writes it after the events in a
        transaction of its own (the IMAP ingester: with its checkpoint)."""
        self._batch_roots, self._batch_content = {}, {}
        self._batch_blobs = self.blobs.batch()
        parsed = [self._parse(item) for item in items]
        content = [_content_key(item.data, p) if isinstance(p, ParsedEmail) else None
                   for item, p in zip(items, parsed, strict=True)]
        self._look_up([p for p in parsed if isinstance(p, ParsedEmail)],
                      [k for k in content if k is not None])
        plans: list[_Plan] = []
        for item, p, k in zip(items, parsed, content, strict=True):
            plans.append(self._plan(item, p, k, len(plans)))
        self._batch_blobs.write()  # every blob (and its key) durable before any event names it
        touch = [c for p in plans if p.kind not in ("quarantine", "same") for c in p.commands]
        results = iter(self._execute_all(touch))
        outcomes = []
        remembered: list[Remembered] = []
        for plan in plans:
            if plan.kind == "same":
                if plan.same_as_plan is not None:
                    first = outcomes[plan.same_as_plan]
                    outcomes.append(replace(first, duplicate=True, detail=SAME_MESSAGE))
                else:
                    assert plan.same_as is not None
                    outcomes.append(Outcome("email", [plan.same_as], True, SAME_MESSAGE))
                continue
            if plan.kind == "quarantine":
                outcomes.append(self._quarantined(plan.commands[0]))
                continue
            done = [(cmd, next(results)) for cmd in plan.commands]
            ok = [(cmd, r) for cmd, (r, _) in done if r is not None]
            problems = [problem for _, (r, problem) in done if r is None]
            if ok:
                keys = [self.sink.source_key_of(c) for c, _ in ok]
                outcomes.append(Outcome(plan.kind, keys, all(r.duplicate for _, r in ok),
                                        "; ".join(problems)))
                if plan.remember is not None:
                    remembered.append(replace(plan.remember, source_key=keys[0]))
                continue
            assert plan.fallback is not None
            reason, _, detail = problems[0].partition(":")
            outcome = self._quarantined(plan.fallback(reason, detail.strip()))
            outcomes.append(replace(outcome, detail=problems[0]))
        if deferred is not None:
            deferred += remembered
        elif self.index is not None and remembered:
            self.index.remember(remembered)
        return outcomes

    def _quarantined(self, cmd: m.Command) -> Outcome:
        return Outcome("quarantine", [self.sink.source_key_of(cmd)], self.sink.execute(cmd).duplicate)

    # ------------------------------------------------------------------ planning
    def _parse(self, item: Fetched) -> ParsedEmail | MessageRejectedError | None:
        """The parsed message, why it cannot be parsed, or None when oversized."""
        if not isinstance(item.parsed, _NotParsed):
            return item.parsed
        return parse_fetched(item.data, item.complete, item.size, self.rules.max_bytes,
                             self.rules.max_depth)

    def _look_up(self, batch: Sequence[ParsedEmail], content_keys: Sequence[str]) -> None:
        """What was recorded before this batch about its messages, in a few queries for the
        whole batch instead of a few per message: thread roots of the messages they answer
        (the index, then mail the hub sent) and earlier copies of their content. Nothing
        this batch records is visible before its events are, so asking up front answers
        as asking message by message would."""
        self._known_roots, self._known_content = {}, {}
        candidates = list(dict.fromkeys(
            c for p in batch for c in [p.in_reply_to, *reversed(p.references)] if c))
        for chunk in _chunks(candidates):
            if self.index is not None:
                self._known_roots.update(self.index.roots(chunk))
            missing = [c for c in chunk if c not in self._known_roots]
            if self.sent_roots is not None and missing:  # replies to mail the hub sent
                self._known_roots.update(self.sent_roots(missing))
        if self.index is not None:
            for chunk in _chunks(list(dict.fromkeys(content_keys))):
                self._known_content.update(self.index.same_contents(chunk))

    def _plan(self, item: Fetched, parsed: ParsedEmail | MessageRejectedError | None,
              content_key: str | None, position: int) -> _Plan:
        raw, origin = item.data, item.origin
        if parsed is None:
            header = raw if not item.complete else raw.split(b"\r\n\r\n", 1)[0][:65536]
            header_ref = self._put(header)
            return self._quarantine(
                f"msg:oversized:{header_ref}:{item.size}", origin, "oversized",
                f"{item.size} bytes > limit {self.rules.max_bytes}", size=item.size,
                header_ref=header_ref, message_id=header_message_id(header),
            )
        if isinstance(parsed, MessageRejectedError):
            raw_ref = self._put(raw)  # whose it is is unknown: kept under no owner
            return self._quarantine(f"msg:{raw_ref}", origin, parsed.reason, parsed.detail,
                                    size=len(raw), raw_ref=raw_ref)
        # Stored under the person it is about, so byte-identical mail of two people is
        # two blobs and erasing one leaves the other's; ids use the owner-free name, which
        # only a message without Message-ID needs (a keyed hash of all its bytes).
        raw_name = "" if parsed.message_id else self.blobs.address_of(raw)
        raw_ref = self._put(raw, self._counterpart(parsed))
        key = message_key(raw, parsed.message_id)
        occurred = parsed.date or origin.received_at or datetime.now(UTC)

        def fallback(reason: str, detail: str) -> em.QuarantineEmail:
            return self._quarantine_cmd(key, origin, reason, detail, size=len(raw),
                                        raw_ref=raw_ref, message_id=parsed.message_id)

        sender = parsed.from_address
        if content_key is not None and content_key in self._batch_content:
            return _Plan("same", [], same_as_plan=self._batch_content[content_key])
        if content_key is not None and (same := self._same_content(content_key, key)):
            return _Plan("same", [], same_as=same)
        try:
            if parsed.is_report:
                plan = self._bounce(parsed, key, raw_ref, occurred, raw_name)
            elif sender is None:
                return _Plan("quarantine", [fallback("no-customer", "no sender address")])
            elif self.rules.is_fax_gateway(sender):
                plan = self._fax(parsed, key, occurred, raw_name)
            else:
                plan = self._email(parsed, key, occurred, raw, raw_name)
        except _Refused as exc:
            return _Plan("quarantine", [fallback(exc.reason, exc.detail)])
        except ValidationError as exc:
            return _Plan("quarantine", [fallback("invalid", _brief(exc))])
        plan.fallback = fallback
        if plan.remember is not None:
            plan.remember = replace(plan.remember, content_key=content_key)
            if content_key is not None:
                self._batch_content[content_key] = position
        return plan

    def _same_content(self, content_key: str, key: str) -> str | None:
        """The source key a message with this content was recorded under by another raw
        form (None if none, or if it is this very message)."""
        prior = self._known_content.get(content_key)
        if prior is None or prior.partition("|")[2].split("#")[0] == key:
            return None
        return prior

    def _email(self, p: ParsedEmail, key: str, occurred: datetime, raw: bytes,
               raw_name: str) -> _Plan:
        assert p.from_address is not None
        outbound = self.rules.is_staff(p.from_address)
        if outbound:
            customers = [a for a in [*p.to, *p.cc] if not self.rules.is_staff(a)]
            if not customers:
                raise _Refused("no-customer", "staff-only recipients")
        else:
            customers = [p.from_address]
        message_id = p.message_id or f"<{raw_name}@touchstream.invalid>"
        references = self._thread_references(p)
        root = references[0] if references else (p.in_reply_to or message_id)
        self._batch_roots.setdefault(message_id, root)
        common: dict[str, Any] = dict(  # noqa: C408 (keyword names mirror the command fields)
            occurred_at=occurred, actor=self.actor, direction="outbound" if outbound else "inbound",
            message_id=message_id, in_reply_to=p.in_reply_to, references=references,
            from_address=p.from_address, to=p.to[:MAX_LIST], cc=p.cc[:MAX_LIST],
            subject=p.subject[:2000],
        )
        commands: list[m.Command] = []
        for i, address in enumerate(customers[:MAX_LIST]):
            owner = blob_owner(address)  # each customer's copy of the bytes is their own
            body, body_ref = self._body(p.body_text, owner)
            commands.append(m.RecordEmail(
                source_key=key if i == 0 else f"{key}#rcpt:{address.lower()}", email=address,
                body_text=body, body_ref=body_ref, attachments=self._attachments(p, owner),
                raw_ref=self._put(raw, owner), **common))
        return _Plan("email", commands, remember=Remembered(message_id, root, None, ""))

    def _thread_references(self, p: ParsedEmail) -> list[str]:
        """References with the thread's recorded root first: the root of the nearest known
        parent (In-Reply-To, then References from the last), else the message's own."""
        candidates = [c for c in [p.in_reply_to, *reversed(p.references)] if c]
        if not candidates:
            return list(p.references)
        # this batch's earlier messages first, then what was recorded before it (_look_up)
        known = {**{c: self._known_roots[c] for c in candidates if c in self._known_roots},
                 **{c: self._batch_roots[c] for c in candidates if c in self._batch_roots}}
        root = next((known[c] for c in candidates if c in known), None)
        if root is None or (p.references and p.references[0] == root):
            return list(p.references)
        return [root, *(r for r in p.references if r != root)][:MAX_LIST]

    def _fax(self, p: ParsedEmail, key: str, occurred: datetime, raw_name: str) -> _Plan:
        number = _fax_number(p, self.rules.fax_number_format)
        if number is None:
            raise _Refused("no-customer", "fax without a sender number")
        doc = next((a for a in p.attachments if a.content_type in FAX_TYPES), None)
        doc_ref = self._put(doc.data) if doc else None
        return _Plan("fax", [m.RecordFax(
            source_key=key, occurred_at=occurred, actor=self.actor, direction="inbound",
            fax_id=(p.message_id or raw_name)[:500], from_number=number,
            to_number=None, pages=None, document_sha256=doc_ref,
            document_size=len(doc.data) if doc else None,
            content_type=doc.content_type if doc else None,
            status="complete" if doc else "failed",
        )])

    def _bounce(self, p: ParsedEmail, key: str, raw_ref: str, occurred: datetime,
                raw_name: str) -> _Plan:
        original = p.original_message_id
        if original is None and p.envelope_id and self.envelope_lookup is not None:
            original = self.envelope_lookup(p.envelope_id)
        if original is None or not p.statuses:
            raise _Refused("invalid", "delivery report without original Message-ID or recipients")
        customer = self.sent_lookup(original) if self.sent_lookup is not None else None
        if customer is None:  # never a prospect for a recipient of mail someone else sent
            raise _Refused("unmatched", f"delivery report about {original}, not sent by this hub")
        commands: list[m.Command] = [
            em.RecordEmailBounce(
                source_key=key if i == 0 else f"{key}#{i}", occurred_at=occurred,
                customer_id=customer,
                actor=self.actor, direction="inbound", original_message_id=original,
                recipient=status.recipient, action=status.action, status=status.status,
                diagnostic=status.diagnostic[:2000] if status.diagnostic else None,
                report_message_id=p.message_id or f"<{raw_name}@touchstream.invalid>",
                raw_ref=raw_ref,
            )
            for i, status in enumerate(p.statuses[:MAX_LIST])
        ]
        return _Plan("bounce", commands)

    # ------------------------------------------------------------------ execution
    def _execute_all(self, commands: list[m.Command]) -> list[tuple[Recorded | None, str]]:
        touch = [c for c in commands if isinstance(c, m.Touchpoint)]
        if self.batch_sink is not None and touch:
            return [(r, "") if isinstance(r, Recorded) else (None, f"invalid: {r}")
                    for r in self.batch_sink.execute_many(touch)]
        return [self._run(c) for c in commands]

    def _run(self, cmd: m.Command) -> tuple[Recorded | None, str]:
        """Execute; a refusal becomes ``(None, "reason: detail")``. Store errors propagate."""
        try:
            return self.sink.execute(cmd), ""
        except HeldForTriageError as exc:
            return None, f"held-for-triage: {exc}"
        except CustomerNotFoundError as exc:
            return None, f"no-customer: {exc}"
        except (DomainError, ValidationError) as exc:
            return None, f"invalid: {exc}"

    def _quarantine(self, key: str, origin: Origin, reason: str, detail: str, **kw: Any) -> _Plan:
        return _Plan("quarantine", [self._quarantine_cmd(key, origin, reason, detail, **kw)])

    def _quarantine_cmd(
        self, key: str, origin: Origin, reason: str, detail: str, *, size: int,
        raw_ref: str | None = None, header_ref: str | None = None, message_id: str | None = None,
    ) -> em.QuarantineEmail:
        return em.QuarantineEmail(
            source_key=key, actor=self.actor, account=origin.account, folder=origin.folder,
            reason=reason if reason in _REASONS else "invalid",  # type: ignore[arg-type]
            detail=detail[:2000], message_id=message_id, uidvalidity=origin.uidvalidity,
            uid=origin.uid, size=size, raw_ref=raw_ref, header_ref=header_ref,
        )

    def _put(self, data: bytes, owner: str | None = None) -> str:
        return self._batch_blobs.put(data, owner)  # written, keys in one go, once per batch

    def _counterpart(self, p: ParsedEmail) -> str | None:
        """The blob owner of a message as a whole: the customer it is from (or, sent by
        staff, the first customer it is to); None for reports and fax gateways."""
        sender = p.from_address
        if sender is None or p.is_report or self.rules.is_fax_gateway(sender):
            return None
        if self.rules.is_staff(sender):
            others = [a for a in [*p.to, *p.cc] if not self.rules.is_staff(a)]
            return blob_owner(others[0]) if others else None
        return blob_owner(sender)

    def _body(self, text: str, owner: str | None) -> tuple[str | None, str | None]:
        if not text:
            return None, None
        if len(text) <= self.rules.body_cap:
            return text, None
        return text[: self.rules.body_cap], self._put(text.encode("utf-8"), owner)

    def _attachments(self, p: ParsedEmail, owner: str | None) -> list[m.Attachment]:
        out = []
        for part in p.attachments[:MAX_LIST]:
            out.append(m.Attachment(
                sha256=self._put(part.data, owner), size=len(part.data),
                content_type=part.content_type[:500],
                filename=part.filename[:500] if part.filename else None,
            ))
        return out


class _Refused(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


_REASONS = {"unparseable", "too-deep", "oversized", "no-customer", "invalid", "held-for-triage",
            "unmatched"}


def _fax_number(p: ParsedEmail, number_format: str = "national") -> str | None:
    """The sender's number: from the subject, else the gateway address's local part,
    written as the gateway writes it (``international``: country code, no ``+``)."""
    found = _NUMBER.search(p.subject)
    if found:
        return found.group(0).strip()
    local = (p.from_address or "").partition("@")[0]
    digits = re.sub(r"[^\d+]", "", local)
    if len(re.sub(r"\D", "", digits)) < 6:
        return None
    if number_format == "international" and not digits.startswith("+"):
        return "+" + digits.lstrip("0")
    return digits


def header_message_id(header: bytes) -> str | None:
    """The Message-ID in a header block (an oversized message is fetched only so far)."""
    try:
        return parse_message(header.rstrip(b"\r\n") + b"\r\n\r\n").message_id
    except MessageRejectedError:
        return None


def _content_key(raw: bytes, p: ParsedEmail) -> str | None:
    """Message-ID + Date + From + a hash of the body bytes: the same message whatever
    headers a migration added or rewrote. None without a Message-ID or Date."""
    if not p.message_id or p.date is None or not p.from_address:
        return None
    body = re.split(rb"\r?\n\r?\n", raw, maxsplit=1)[1:] or [b""]
    digest = hashlib.sha256(body[0].rstrip(b"\r\n")).hexdigest()
    ident = f"{p.message_id}\0{p.date.isoformat()}\0{p.from_address.lower()}\0{digest}"
    return "content:" + hashlib.sha256(ident.encode()).hexdigest()


def _chunks(items: list[str], size: int = 500) -> list[list[str]]:
    """Lookups take at most 500 keys at a time."""
    return [items[i:i + size] for i in range(0, len(items), size)]


def _brief(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(x) for x in e['loc'])}: {e['msg']}" for e in exc.errors())[:2000]
