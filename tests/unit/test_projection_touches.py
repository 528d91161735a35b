"""A read model that names the event classes it acts on (``Projection.touches``) is never
handed the others: its rows must be exactly those of an ``apply`` given every event."""

from __future__ import annotations

import ast
import inspect
from collections import Counter
from pathlib import Path

from commands import email_messages as em
from commands import messages as m
from projections import registry
from projections.engine import (
    EventSource,
    Projection,
    Worker,
    consumed_by,
    create_generation,
    ensure_tracking,
    iter_batches,
)
from projections.store import ReadStore
from replays.rebuild import compare
from tests.conftest import store_env
from touchstream import demo
from touchstream import settings as settings_mod
from touchstream.wiring import build_hub


def _untouched(projection: Projection) -> Projection:
    """The same read model handed every event it consumes."""
    return type(f"All{type(projection).__name__}", (type(projection),), {"touches": None})()


def test_read_models_that_skip_event_classes_keep_the_rows_of_a_full_apply(
        tmp_path: Path) -> None:
    # In memory: the events are those of a stored log, without a commit per command.
    hub = build_hub(settings_mod.load(store_env("sqlite", tmp_path)),
                    {"PERSISTENCE_MODULE": "eventsourcing.popo"})
    try:
        plan = demo.demo_plan(3, 1, seed=5)
        demo.seed(hub, plan)
        # A hard bounce (so small a demo has none): auto_replies keeps the address.
        address = next(p.value for c in plan.commands if isinstance(c, m.RegisterCustomer)
                       for p in c.contact_points if p.kind == "email")
        hub.execute(em.RecordEmailBounce(original_message_id="<x@shop.example>",
                                         recipient=address, action="failed", status="5.1.1",
                                         report_message_id="<dsn1@mx>"))
        source = EventSource(hub.recorder, hub.mapper)
        skipping = [p for p in registry.select(None) if p.touches is not None]
        assert len(skipping) >= 10
        db = ReadStore(f"sqlite:///{tmp_path / 'read.db'}").connect()
        ensure_tracking(db)
        pairs = [(p, create_generation(db, p), create_generation(db, p)) for p in skipping]
        targets = [t for p, a, b in pairs for t in ((p, a), (_untouched(p), b))]
        # Runs of skipped and kept events fall across batch boundaries.
        Worker(db, source, targets, batch=50).catch_up()
        head = source.head()
        classes = Counter(type(e) for items, _ in iter_batches(
            source, 0, head, 500, consumed_by(skipping)) for _, e in items)
        for p, kept, full in pairs:
            assert p.touches is not None
            handled = {c for c in classes if issubclass(c, p.touches)}
            # The demo gives every such read model events to act on and events to skip.
            assert handled and set(classes) - handled, p.name
            found = compare(db, p, full, kept, head)
            assert found.equal, (p.name, found.differences[:3])
        db.close()
        source.close()
    finally:
        hub.close()


def _mentioned_classes(module: object) -> set[type]:
    """Every class the module's source names as ``X`` or ``a.b.X``, resolved in its globals."""
    found: set[type] = set()
    for node in ast.walk(ast.parse(inspect.getsource(module))):  # type: ignore[arg-type]
        chain: list[str] = []
        cur: ast.expr = node  # type: ignore[assignment]
        while isinstance(cur, ast.Attribute):
            chain.append(cur.attr)
            cur = cur.value
        if not isinstance(node, (ast.Attribute, ast.Name)) or not isinstance(cur, ast.Name):
            continue
        value: object = vars(module).get(cur.id)
        for attr in reversed(chain):
            value = getattr(value, attr, None)
        if isinstance(value, type):
            found.add(value)
    return found


def test_a_read_model_that_names_its_classes_names_every_event_class_its_module_uses() -> None:
    # ``touches`` is kept by hand: an ``apply`` taught a new event class whose read model
    # does not declare it would silently never see it. Any event class its module's
    # source names (isinstance, a dispatch table, a helper) must be declared.
    checked = 0
    for cls in registry.PROJECTIONS.values():
        if cls.touches is None:
            continue
        checked += 1
        module = inspect.getmodule(cls)
        events = {c for c in _mentioned_classes(module)
                  if issubclass(c, cls.consumes) and c not in cls.consumes}  # not the bases
        missing = sorted(c.__qualname__ for c in events if not issubclass(c, cls.touches))
        assert not missing, f"{cls.name}: acts on {missing} but does not declare them"
    assert checked >= 15
