"""Demo data for field dispatch: five technicians and a fortnight of work orders.

The fortnight is the 14 days before ``until`` (working days only). Each technician
has four two-hour slots a day and one of them free (which one turns with the
technician and the day), so the day's one hand-over — a reassign on even days, a decline then a
new assignment on odd days — always lands in a free slot. Past days end done and
written off (a few cancelled); the last working day is caught mid-way (done, on
site, en route, accepted), the day before leaves an assigned order nobody attended
and an on-site one never finished, and a few orders wait unassigned or have no
window yet. Judged at ``demo_now(until)`` (13:30 on the last day), the board shows
late and overdue work; at the real clock, every open order is overdue.

Pure: work order *n* depends only on the seed and *n* (and is left out when its
customer is not among the seeded ones), so a smaller data set is a prefix of a
larger one, and seeding twice records nothing new.
"""

from __future__ import annotations

import hashlib
import random
from datetime import datetime, timedelta
from uuid import UUID, uuid5

from commands import dispatch as cd
from commands import messages as m
from commands.naming import NAMESPACE

TECHNICIANS = (("jonas", ("boiler", "gas")), ("priya", ("boiler", "heat-pump")),
               ("sam", ("boiler", "gas")), ("eva", ("boiler", "electrical")),
               ("kofi", ("boiler", "gas", "heat-pump")))
SLOTS = (8.0, 10.5, 13.0, 15.5)  # two-hour windows starting at these hours (UTC)
CUSTOMER_POOL = 60  # work orders go to the first 60 demo customers
DAYS = 14
_STREETS = ("Mill Lane", "Station Road", "Church Street", "Park Avenue", "Victoria Road",
            "Kings Road", "Queen Street", "High Street")
_TOWNS = ("Leeds", "York", "Bradford", "Harrogate", "Wakefield", "Halifax")
_PROBLEMS = ("No hot water", "Boiler losing pressure", "Radiators cold upstairs",
             "Annual service", "Noisy pump", "Thermostat not responding")
_PNG = b"\x89PNG\r\n\x1a\n"


def demo_now(until: datetime) -> datetime:
    """The moment the demo board is best judged at: 13:30 on the fortnight's last day."""
    return _last_day(until) + timedelta(hours=13.5)


def technician_id(seed: int, handle: str) -> UUID:
    return uuid5(NAMESPACE, f"demo-technician:{seed}:{handle}")


def work_order_id(seed: int, n: int) -> UUID:
    return uuid5(NAMESPACE, f"demo-work-order:{seed}:{n}")


def _last_day(until: datetime) -> datetime:
    day = (until - timedelta(seconds=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    while day.weekday() >= 5:
        day -= timedelta(days=1)
    return day


def plan_work_orders(commands: list[m.Command], blobs: list[bytes], customers: list[UUID],
                     seed: int, until: datetime) -> None:
    """Append the technicians' registrations and the fortnight's work orders."""
    techs = [technician_id(seed, h) for h, _ in TECHNICIANS]
    for (handle, skills), tid in zip(TECHNICIANS, techs, strict=True):
        commands.append(cd.RegisterTechnician(
            technician_id=tid, handle=handle, skills=list(skills), actor="dispatcher:demo",
            source_key=f"demo:{seed}:tech:{handle}", occurred_at=until - timedelta(days=30)))
    last = _last_day(until)
    days = [last - timedelta(days=k) for k in range(DAYS) if
            (last - timedelta(days=k)).weekday() < 5]
    n = 0
    for day in sorted(days):
        offset = (last - day).days
        handover = n + (offset % len(TECHNICIANS)) * (len(SLOTS) - 1)
        for t, tid in enumerate(techs):
            free = (t + day.toordinal()) % len(SLOTS)
            for j, hour in enumerate(SLOTS):
                if j == free:
                    continue
                # The last two days' orders go to the first three customers, so even a
                # small demo shows late and overdue work.
                order = _Order(seed, n, customers, day + timedelta(hours=hour), until,
                               CUSTOMER_POOL if offset > 1 else 3)
                n += 1
                if order.customer is None:
                    continue
                target = None
                if order.n == handover:
                    target = techs[(j - day.toordinal()) % len(SLOTS)]
                commands += order.commands(tid, target, offset, j, t, blobs)
    for extra in range(6):  # unassigned work: three scheduled for the last day, three undated
        order = _Order(seed, n + extra, customers, last + timedelta(hours=SLOTS[extra % 4]),
                       until, 3)
        if order.customer is not None:
            commands += order.waiting(windowed=extra < 3)


class _Order:
    def __init__(self, seed: int, n: int, customers: list[UUID], start: datetime,
                 until: datetime, pool: int) -> None:
        self.n, self.start, self.until = n, start, until
        self.rng = random.Random(f"touchstream-demo-dispatch:{seed}:{n}")
        index = self.rng.randrange(pool)
        self.customer = customers[index] if index < len(customers) else None
        self.id = work_order_id(seed, n)
        self.key = f"demo:{seed}:wo{n}"

    def _base(self) -> dict[str, object]:
        assert self.customer is not None
        return {"customer_id": self.customer, "work_order_id": self.id,
                "actor": "dispatcher:demo"}

    def _at(self, delta: timedelta) -> datetime:
        return min(self.start + delta, self.until - timedelta(minutes=1)).replace(microsecond=0)

    def _create(self, windowed: bool) -> list[m.Command]:
        rng = self.rng
        case = uuid5(NAMESPACE, f"demo-case:{self.key}") if rng.random() < 0.2 else None
        created = [cd.CreateWorkOrder(
            **self._base(), case_id=case, skill="boiler",  # type: ignore[arg-type]
            address=f"{rng.randint(1, 180)} {rng.choice(_STREETS)}, {rng.choice(_TOWNS)}",
            summary=rng.choice(_PROBLEMS), priority=rng.choice(["normal"] * 3 + ["high"]),
            source_key=f"{self.key}:create", occurred_at=self._at(-timedelta(days=3)))]
        if windowed:
            created.append(cd.ScheduleWorkOrder(
                **self._base(), window_start=self.start,  # type: ignore[arg-type]
                window_end=self.start + timedelta(hours=2), source_key=f"{self.key}:schedule",
                occurred_at=self._at(-timedelta(days=2))))
        return created

    def waiting(self, windowed: bool) -> list[m.Command]:
        return self._create(windowed)

    def commands(self, tid: UUID, target: UUID | None, offset: int, slot: int, tech: int,
                 blobs: list[bytes]) -> list[m.Command]:
        rng, base = self.rng, self._base()
        out = self._create(windowed=True)
        if offset > 1 and rng.random() < 0.08:
            return [*out, cd.CancelWorkOrder(**base, reason="customer cancelled",  # type: ignore[arg-type]
                                             source_key=f"{self.key}:cancel",
                                             occurred_at=self._at(-timedelta(days=1)))]
        out.append(cd.AssignTechnician(**base, technician_id=tid,  # type: ignore[arg-type]
                                       source_key=f"{self.key}:assign",
                                       occurred_at=self._at(-timedelta(hours=30))))
        if target is not None and offset % 2 == 1:
            out += [cd.DeclineWorkOrder(**base, technician_id=tid, reason="van in for repair",  # type: ignore[arg-type]
                                        source_key=f"{self.key}:decline",
                                        occurred_at=self._at(-timedelta(hours=26))),
                    cd.AssignTechnician(**base, technician_id=target,  # type: ignore[arg-type]
                                        source_key=f"{self.key}:assign2",
                                        occurred_at=self._at(-timedelta(hours=25)))]
            tid = target
        elif target is not None:
            out.append(cd.ReassignTechnician(**base, technician_id=target,  # type: ignore[arg-type]
                                             source_key=f"{self.key}:reassign",
                                             occurred_at=self._at(-timedelta(hours=25))))
            tid = target
        # How far along the order got: the last day stops mid-way, the day before
        # leaves two unfinished, older days finish.
        reach = 6
        if offset == 0:
            reach = (5, 4, 3, 2)[slot]
        elif offset == 1 and tech < 2 and slot in (1, 3):
            reach = 1 if slot == 1 else 4
        step = {**base, "technician_id": tid}
        arrive = timedelta(minutes=rng.randint(-10, 45))
        if reach >= 2:
            out.append(cd.AcceptWorkOrder(**step, source_key=f"{self.key}:accept",  # type: ignore[arg-type]
                                          occurred_at=self._at(-timedelta(hours=20))))
        if reach >= 3:
            out.append(cd.StartTravel(**step, eta=self.start,  # type: ignore[arg-type]
                                      source_key=f"{self.key}:travel",
                                      occurred_at=self._at(arrive - timedelta(minutes=25))))
        if reach >= 4:
            out.append(cd.RecordArrival(**step, source_key=f"{self.key}:arrive",  # type: ignore[arg-type]
                                        occurred_at=self._at(arrive)))
        if reach >= 5:
            minutes = rng.randint(35, 150)
            signature = _PNG + f"demo signature {self.key}".encode()
            blobs.append(signature)
            parts = [cd.PartUsed(part=p, quantity=rng.randint(1, 2))
                     for p in rng.sample(["valve-22mm", "pump-seal", "thermocouple", "fuse-5a",
                                          "filter"], rng.randint(0, 2))]
            out.append(cd.RecordWorkDone(
                **step, minutes_spent=minutes, parts=parts,  # type: ignore[arg-type]
                signature_ref=hashlib.sha256(signature).hexdigest(),
                notes=rng.choice(["Fixed", "Replaced part", "Serviced", "Advised customer"]),
                source_key=f"{self.key}:done",
                occurred_at=self._at(arrive + timedelta(minutes=minutes))))
        if reach >= 6 and self.start + timedelta(days=1) < self.until:
            out.append(cd.CloseWorkOrder(**base, reason="invoiced",  # type: ignore[arg-type]
                                         source_key=f"{self.key}:close",
                                         occurred_at=self._at(timedelta(days=1))))
        return out
