"""Acting on a customer from the console: the API's commands, roles and idempotency.

Each form carries a token made when it was rendered (``idem``); the command's source
key comes from it exactly as the API's ``Idempotency-Key`` makes one
(``http:<key id>:console-<token>``), or the command's own id does (a logged call's
``call_id``, a callback's ``callback_id``, a visit's ``visit_id`` are ``console-<token>``),
so a double click or a resent form records one event. Commands run through
``channels.web.command_routes.run_command`` (the API's one error translation) and the
role table ``ROUTE_ROLES``. The answer waits until the read models have the new
events (read-your-writes, ``ReadDeps.reached``) and returns them as timeline rows,
with the summary and a status line swapped in beside them (htmx out-of-band swaps).
"""

# No "from __future__ import annotations": FastAPI must see the route signatures evaluated.

import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from channels.web.command_routes import ROUTE_ROLES, run_command
from commands import messages as m
from commands.identity import contact_key
from commands.ports import Recorded
from read_api import partner
from read_api.dependencies import Principal, is_partner, not_found, scoped
from touchstream.console.accounts import accounts_of
from touchstream.console.context import Console
from touchstream.console.customers import PANELS, can
from touchstream.console.web import PREFIX, form_of, new_token

_IDEM = re.compile(r"^[0-9a-f]{32}$")


def _token(form: dict[str, str]) -> str:
    token = form.get("idem", "")
    if not _IDEM.match(token):
        raise HTTPException(400, detail="the form has no valid idempotency token; reload the "
                                        "page")
    return token


def _opt(form: dict[str, str], name: str) -> str | None:
    value = form.get(name, "").strip()
    return value or None


def _when(form: dict[str, str], name: str) -> datetime | None:
    """A ``datetime-local`` field, read as UTC."""
    value = _opt(form, name)
    if value is None:
        return None
    try:
        stamp = datetime.fromisoformat(value)
    except ValueError as exc:
        raise HTTPException(422, detail=f"{name}: not a date and time: {value!r}") from exc
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)


def _int(form: dict[str, str], name: str) -> int | None:
    value = _opt(form, name)
    if value is None:
        return None
    if not value.isdigit():
        raise HTTPException(422, detail=f"{name}: a whole number, please")
    return int(value)


def router(console: Console) -> APIRouter:
    router = console.router(dependencies=[Depends(console.csrf)])
    reads, pages = console.reads, console.pages
    views = reads.views

    def actor(who: Principal) -> str:
        return f"console:{who.name or who.key_id}"

    def scoped_key(who: Principal, token: str) -> str:
        return f"http:{who.key_id}:console-{token}"

    async def run(build: Callable[[], m.Command]) -> Recorded:
        try:
            cmd = build()
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'input'}: "
                                 f"{e['msg']}" for e in exc.errors())
            raise HTTPException(422, detail=problems) from exc
        return await run_in_threadpool(run_command, console.hub(), cmd)

    async def done(request: Request, who: Principal, customer_id: str, result: Recorded,
                   message: str) -> Response:
        """The new rows, the fresh summary and a status line, once the read models have
        them (read-your-writes)."""
        await reads.reached([views.timeline, views.summary], result.position)

        def work() -> dict[str, Any]:
            found = scoped(views.summary.resolve(customer_id), who, customer_id)
            summary: Any = views.summary.summary(found.root)
            if summary is None:
                raise not_found(customer_id)
            rows = [d.entry for d in (views.timeline.detail(e) for e in result.event_ids)
                    if d is not None]
            business = console.business.block(who, found.root, datetime.now(UTC))
            return {"summary": summary, "business": business, "root": found.root,
                    "rows": rows, "accounts": accounts_of(console, who, found.root)}

        data = await reads.call(work)
        await reads.record(request, who, [data["root"]])  # the answer shows their summary
        summary = partner.summary(data["summary"]) if is_partner(who) else data["summary"]
        if result.duplicate:
            message = "Already recorded (this form was sent before): nothing new."
        return pages.render(request, "_done.html", items=[] if result.duplicate
                            else data["rows"], root=data["root"], summary=summary,
                            business=data["business"], accounts=data["accounts"],
                            message=message, panels=PANELS, token=new_token(),
                            can=lambda action: can(who, action))

    def acting(action: str) -> Any:
        return reads.reader(*console_roles(action))

    @router.post("/customers/{customer_id}/notes")
    async def add_note(customer_id: UUID, request: Request,
                       who: Annotated[Principal, Depends(acting("add-note"))]) -> Response:
        form = await form_of(request)
        token = _token(form)
        result = await run(lambda: m.AddNote(
            customer_id=customer_id, text=form.get("text", ""),
            visibility=form.get("visibility") or "internal",  # type: ignore[arg-type]
            source_key=scoped_key(who, token), actor=actor(who)))
        return await done(request, who, str(customer_id), result, "Note added.")

    @router.post("/customers/{customer_id}/calls")
    async def log_call(customer_id: UUID, request: Request,
                       who: Annotated[Principal, Depends(acting("log-call"))]) -> Response:
        form = await form_of(request)
        token = _token(form)
        minutes = _int(form, "duration_min")
        result = await run(lambda: m.LogCall(
            customer_id=customer_id, call_id=f"console-{token}",
            direction=form.get("direction") or "outbound",  # type: ignore[arg-type]
            outcome=form.get("outcome") or "answered",  # type: ignore[arg-type]
            duration_s=minutes * 60 if minutes is not None else None,
            summary=_opt(form, "summary"), agent=who.name or None,
            occurred_at=_when(form, "occurred_at"), actor=actor(who)))
        return await done(request, who, str(customer_id), result, "Call logged.")

    @router.post("/customers/{customer_id}/visits")
    async def log_visit(customer_id: UUID, request: Request,
                        who: Annotated[Principal, Depends(acting("record-visit"))]) -> Response:
        form = await form_of(request)
        token = _token(form)
        result = await run(lambda: m.RecordVisit(
            customer_id=customer_id, visit_id=f"console-{token}",
            visit_kind=form.get("visit_kind") or "office",  # type: ignore[arg-type]
            staff=who.name or who.key_id, place=_opt(form, "place"),
            purpose=_opt(form, "purpose"), outcome=_opt(form, "outcome"),
            notes=_opt(form, "notes"), duration_min=_int(form, "duration_min"),
            occurred_at=_when(form, "occurred_at"), actor=actor(who)))
        return await done(request, who, str(customer_id), result, "Visit logged.")

    @router.post("/customers/{customer_id}/callbacks")
    async def request_callback(
        customer_id: UUID, request: Request,
        who: Annotated[Principal, Depends(acting("request-callback"))],
    ) -> Response:
        form = await form_of(request)
        token = _token(form)
        result = await run(lambda: m.RequestCallback(
            customer_id=customer_id, callback_id=f"console-{token}",
            number=_opt(form, "number"), requested_for=_when(form, "requested_for"),
            reason=_opt(form, "reason"), actor=actor(who)))
        return await done(request, who, str(customer_id), result, "Callback requested.")

    @router.post("/customers/{customer_id}/callbacks/{callback_id}/complete")
    async def complete_callback(
        customer_id: UUID, callback_id: str, request: Request,
        who: Annotated[Principal, Depends(acting("complete-callback"))],
    ) -> Response:
        form = await form_of(request)
        result = await run(lambda: m.CompleteCallback(
            customer_id=customer_id, callback_id=callback_id,
            outcome=form.get("outcome") or "reached",  # type: ignore[arg-type]
            actor=actor(who)))
        return await done(request, who, str(customer_id), result, "Callback completed.")

    @router.post("/customers/{customer_id}/stage")
    async def change_stage(
        customer_id: UUID, request: Request,
        who: Annotated[Principal, Depends(acting("change-lifecycle-stage"))],
    ) -> Response:
        form = await form_of(request)
        token = _token(form)
        result = await run(lambda: m.ChangeLifecycleStage(
            customer_id=customer_id, to_stage=form.get("to_stage", ""),  # type: ignore[arg-type]
            reason=_opt(form, "reason"), source_key=scoped_key(who, token),
            actor=actor(who)))
        return await done(request, who, str(customer_id), result, "Lifecycle stage changed.")

    @router.post("/customers/{customer_id}/merge")
    async def merge(customer_id: UUID, request: Request,
                    who: Annotated[Principal, Depends(acting("merge-customers"))]) -> Response:
        form = await form_of(request)
        token = _token(form)
        try:
            source = UUID(form.get("source_id", ""))
        except ValueError as exc:
            raise HTTPException(422, detail="source_id: not a customer id") from exc
        result = await run(lambda: m.MergeCustomers(
            source_id=source, target_id=customer_id, source_key=scoped_key(who, token),
            actor=actor(who)))
        return await moved(request, result, str(customer_id))

    @router.post("/customers/{customer_id}/unmerge")
    async def unmerge(customer_id: UUID, request: Request,
                      who: Annotated[Principal, Depends(acting("unmerge-customer"))]
                      ) -> Response:
        form = await form_of(request)
        token = _token(form)
        try:
            source = UUID(form.get("source_id", ""))
        except ValueError as exc:
            raise HTTPException(422, detail="source_id: not a customer id") from exc
        result = await run(lambda: m.UnmergeCustomer(
            source_id=source, source_key=scoped_key(who, token), actor=actor(who)))
        return await moved(request, result, str(customer_id))

    async def moved(request: Request, result: Recorded, customer_id: str) -> Response:
        """After a merge or unmerge the whole page changes: reload it once the read
        models have the change."""
        await reads.reached([views.timeline, views.summary, views.directory], result.position)
        target = f"{PREFIX}/customers/{customer_id}"
        return Response(status_code=204, headers={"HX-Redirect": target})

    @router.post("/prospects")
    async def create_prospect(
        request: Request, who: Annotated[Principal, Depends(acting("register-customer"))],
    ) -> Response:
        """One click from an unknown caller's card: the same prospect the write model
        makes for an unknown sender (same id, same source key), so it is never doubled."""
        form = await form_of(request)
        try:
            number = console.normalise_phone(form.get("number", ""))
        except Exception as exc:  # the normaliser raises domain or value errors
            raise HTTPException(422, detail=f"number: {exc}") from exc
        hub = console.hub()
        ckey = contact_key("phone", number)
        result = await run(lambda: m.RegisterCustomer(
            customer_id=hub.naming.prospect(ckey), name=number,
            contact_points=[m.ContactPointIn(kind="phone", value=number)],
            source_key=f"prospect:{ckey}", actor=actor(who)))
        await reads.reached([views.summary, views.directory], result.position)
        return Response(status_code=204, headers={
            "HX-Redirect": f"{PREFIX}/customers/{result.customer_id}"})

    return router


def console_roles(action: str) -> tuple[str, ...]:
    """The roles the API admits to the command behind ``action``."""
    return tuple(ROUTE_ROLES[action])


def previews(console: Console) -> APIRouter:
    """``GET`` previews of a merge and an unmerge: what would happen, and the button."""
    router = console.router()
    reads, pages = console.reads, console.pages
    views = reads.views
    merger = reads.reader(*console_roles("merge-customers"))

    async def summary_of(request: Request, who: Principal, customer_id: str) -> Any:
        def work() -> Any:
            found = scoped(views.summary.resolve(customer_id), who, customer_id)
            return views.summary.summary(found.root)

        found = await reads.call(work)
        if found is None:
            raise not_found(customer_id)
        await reads.record(request, who, [found["customer_id"]])
        return found

    @router.get("/customers/{customer_id}/merge", dependencies=reads.audited(merger))
    async def merge_preview(customer_id: UUID, request: Request,
                            who: Annotated[Principal, Depends(merger)],
                            other: Annotated[str, Query(max_length=200)] = "") -> Response:
        target = await summary_of(request, who, str(customer_id))
        candidates: list[Any] = []
        source = None
        try:
            source_id = str(UUID(other)) if other else None
        except ValueError:
            source_id = None
        if source_id is not None:
            source = await summary_of(request, who, source_id)
            if source["customer_id"] == target["customer_id"]:
                raise HTTPException(409, detail="that is this customer (or already merged "
                                                "into it)")
        elif other.strip():
            page = await reads.call(lambda: views.directory.search_page(
                other, limit=10, partner_id=who.partner_id, partner_only=is_partner(who)))
            candidates = [c for c in page.items if c["customer_id"] != target["customer_id"]]
        return pages.render(request, "_merge_preview.html", target=target, source=source,
                            candidates=candidates, other=other, token=new_token())

    @router.get("/customers/{customer_id}/unmerge", dependencies=reads.audited(merger))
    async def unmerge_preview(customer_id: UUID, request: Request,
                              who: Annotated[Principal, Depends(merger)],
                              source: Annotated[UUID, Query()]) -> Response:
        target = await summary_of(request, who, str(customer_id))
        if str(source) not in target["merged_from"]:
            raise HTTPException(409, detail=f"{source} is not merged into this customer")
        entry = await reads.call(views.directory.entry, str(source))
        return pages.render(request, "_unmerge_preview.html", target=target,
                            source_id=str(source), source=entry, token=new_token())

    return router
