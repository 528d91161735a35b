"""Leases: exactly one holder per name across the fleet, taken over when a holder dies.

A lease is a row (name, owner, expiry). ``acquire`` takes a free or expired
lease, or renews one the caller already holds, in one conditional upsert; on
PostgreSQL the expiry is computed with the server's clock, so the hosts'
clocks never have to agree. A holder renews every ``ttl/3``; a host that dies
(or loses the database for longer than the lease) stops renewing and its
lease is taken by another after at most ``ttl`` plus one renewal interval.

An owner is ``<node>:<pid>:<random>``. A lease whose owner names this node and
a process that no longer exists is dead at once (a SIGKILLed worker restarted
on the same host does not wait out its own lease); other hosts wait for the
expiry. Leases decide who does the work, never whether it is correct: a
holder that stalls past its lease may overlap with its successor for one
batch, and what it does then is still deduplicated (source keys, projection
positions, one "sent" per Message-ID).

``LeaseGroup`` holds a set of names for a loop of work: all of them (IMAP
folders), or a fair share among the live members of a pool (projection
workers: ``ceil(names / members)`` each, rebalanced at every renewal).
"""

from __future__ import annotations

import logging
import math
import os
import secrets
import socket
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

from touchstream.fleet.pg import StatePool

log = logging.getLogger("touchstream.fleet")

_SQLITE_DDL = ("CREATE TABLE IF NOT EXISTS ts_lease (name TEXT PRIMARY KEY, owner TEXT NOT NULL, "
               "expires_at REAL NOT NULL)")
_PG_DDL = ("CREATE TABLE IF NOT EXISTS ts_lease (name TEXT PRIMARY KEY, owner TEXT NOT NULL, "
           "expires_at TIMESTAMPTZ NOT NULL)")


class Leases(Protocol):
    """Named leases shared by every process that uses the same state store."""

    def acquire(self, name: str, owner: str, ttl_s: float) -> bool:
        """Take ``name`` if free or expired, or renew it if ``owner`` holds it: True when
        ``owner`` holds it for ``ttl_s`` seconds from now."""

    def release(self, name: str, owner: str) -> None:
        """Give ``name`` up if ``owner`` holds it (a clean stop hands over at once)."""

    def holders(self, prefix: str) -> dict[str, str]:
        """Unexpired leases whose name starts with ``prefix``: name → owner."""

    def take_from_dead(self, name: str, dead: str, owner: str, ttl_s: float) -> bool:
        """Take ``name`` from ``dead`` (a holder known to be gone) if it still holds it."""

    def close(self) -> None: ...


def owner_id(node: str | None = None) -> str:
    """A fresh owner name for this process: ``<node>:<pid>:<random>``."""
    return f"{node or socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


def _dead_here(owner: str, node: str) -> bool:
    """True when ``owner`` was a process on this node that no longer exists."""
    where, _, rest = owner.rpartition(":")[0].rpartition(":")
    if where != node or not rest.isdigit():
        return False
    try:
        os.kill(int(rest), 0)
    except ProcessLookupError:
        return True
    except OSError:  # exists, owned by another user
        return False
    return False


def acquire(leases: Leases, name: str, owner: str, ttl_s: float) -> bool:
    """``leases.acquire``, taking at once a lease held by a dead process of this node."""
    if leases.acquire(name, owner, ttl_s):
        return True
    node = owner.rsplit(":", 2)[0]
    holder = leases.holders(name).get(name)
    if holder is not None and holder != owner and _dead_here(holder, node):
        log.info("lease %s: its holder %s is gone, taking it over", name, holder)
        return leases.take_from_dead(name, holder, owner, ttl_s)
    return False


class SQLiteLeases:
    """Leases in a SQLite file: shared by the processes of one host."""

    def __init__(self, path: Path, clock: Callable[[], float] | None = None) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.clock = clock or time.time
        self._conn = sqlite3.connect(str(path), timeout=30, isolation_level=None,
                                     check_same_thread=False)
        self._lock = threading.Lock()
        with self._lock:
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute(_SQLITE_DDL)

    def acquire(self, name: str, owner: str, ttl_s: float) -> bool:
        now = self.clock()
        with self._lock:
            cur = self._conn.execute(
                "INSERT INTO ts_lease VALUES (?,?,?) ON CONFLICT (name) DO UPDATE SET "
                "owner=excluded.owner, expires_at=excluded.expires_at "
                "WHERE ts_lease.owner=excluded.owner OR ts_lease.expires_at<=?",
                (name, owner, now + ttl_s, now))
            return cur.rowcount == 1

    def release(self, name: str, owner: str) -> None:
        with self._lock:
            self._conn.execute("DELETE FROM ts_lease WHERE name=? AND owner=?", (name, owner))

    def holders(self, prefix: str) -> dict[str, str]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT name, owner FROM ts_lease WHERE substr(name, 1, ?)=? AND expires_at>?",
                (len(prefix), prefix, self.clock())).fetchall()
        return {r[0]: r[1] for r in rows}

    def take_from_dead(self, name: str, dead: str, owner: str, ttl_s: float) -> bool:
        with self._lock:
            cur = self._conn.execute(
                "UPDATE ts_lease SET owner=?, expires_at=? WHERE name=? AND owner=?",
                (owner, self.clock() + ttl_s, name, dead))
            return cur.rowcount == 1

    def close(self) -> None:
        with self._lock:
            self._conn.close()


class PostgresLeases:
    """Leases in PostgreSQL: shared by every host; expiries by the server's clock."""

    def __init__(self, uri: str, timeout_s: float = 5) -> None:
        self._db = StatePool(uri, [_PG_DDL], name="touchstream-leases", timeout_s=timeout_s)

    def acquire(self, name: str, owner: str, ttl_s: float) -> bool:
        with self._db.connection() as conn:
            row = conn.execute(
                "INSERT INTO ts_lease AS l (name, owner, expires_at) VALUES "
                "(%s, %s, clock_timestamp() + make_interval(secs => %s)) "
                "ON CONFLICT (name) DO UPDATE SET owner=EXCLUDED.owner, "
                "expires_at=EXCLUDED.expires_at "
                "WHERE l.owner=EXCLUDED.owner OR l.expires_at<=clock_timestamp() "
                "RETURNING owner", (name, owner, float(ttl_s))).fetchone()
        return row is not None

    def release(self, name: str, owner: str) -> None:
        with self._db.connection() as conn:
            conn.execute("DELETE FROM ts_lease WHERE name=%s AND owner=%s", (name, owner))

    def holders(self, prefix: str) -> dict[str, str]:
        with self._db.connection() as conn:
            rows = conn.execute(
                "SELECT name, owner FROM ts_lease WHERE left(name, %s)=%s "
                "AND expires_at>clock_timestamp()", (len(prefix), prefix)).fetchall()
        return {r[0]: r[1] for r in rows}

    def take_from_dead(self, name: str, dead: str, owner: str, ttl_s: float) -> bool:
        with self._db.connection() as conn:
            row = conn.execute(
                "UPDATE ts_lease SET owner=%s, expires_at=clock_timestamp() + "
                "make_interval(secs => %s) WHERE name=%s AND owner=%s RETURNING owner",
                (owner, float(ttl_s), name, dead)).fetchone()
        return row is not None

    def close(self) -> None:
        self._db.close()


Work = Callable[[frozenset[str], threading.Event], None]


class LeaseGroup:
    """Holds leases on ``names`` (as ``<prefix><name>``) while running work over them.

    ``run`` takes what it may, calls ``work(owned, round_over)`` and renews the
    leases meanwhile; ``round_over`` is set when ``stop`` is, when a lease was
    lost, or when the share changed (a name freed, a member joined or left), and
    ``work`` must then return soon; the next round runs with the new set. With
    ``pool`` the members share the names fairly; without it one holder takes all
    it can (an IMAP follower).
    """

    def __init__(self, leases: Leases, prefix: str, names: Sequence[str], owner: str,
                 ttl_s: float, *, pool: str | None = None) -> None:
        self.leases = leases
        self.prefix = prefix
        self.names = list(dict.fromkeys(names))
        self.owner = owner
        self.ttl_s = ttl_s
        self.renew_s = ttl_s / 3
        self.pool = pool
        self.held: set[str] = set()

    def run(self, stop: threading.Event, work: Work) -> None:
        try:
            while not stop.is_set():
                try:
                    owned = self.take()
                except Exception as exc:  # noqa: BLE001 -- the state store is away: hold nothing, retry
                    log.warning("leases %s: %s: %s", self.prefix, type(exc).__name__, exc)
                    self.held = set()
                    stop.wait(self.renew_s)
                    continue
                if not owned:
                    stop.wait(self.renew_s)
                    continue
                round_over = threading.Event()
                keeper = threading.Thread(target=self._keep, args=(owned, stop, round_over),
                                          name=f"lease-{self.prefix}", daemon=True)
                keeper.start()
                try:
                    work(frozenset(owned), round_over)
                finally:
                    round_over.set()
                    keeper.join()
        finally:
            self.release_all()

    def take(self) -> set[str]:
        """Renew the leases held, take free ones up to the share, give back any excess."""
        quota = len(self.names)
        if self.pool is not None:
            member = f"member:{self.pool}:"
            acquire(self.leases, member + self.owner, self.owner, self.ttl_s)
            members = len(self.leases.holders(member))
            quota = math.ceil(len(self.names) / max(members, 1))
        held = set()
        for name in sorted(self.names, key=lambda n: n not in self.held):
            if (name in self.held or len(held) < quota) and acquire(
                    self.leases, self.prefix + name, self.owner, self.ttl_s):
                held.add(name)
        for name in sorted(held)[quota:] if len(held) > quota else []:
            self.leases.release(self.prefix + name, self.owner)
            held.discard(name)
        if held != self.held:
            log.info("leases %s: %s holds %s", self.prefix, self.owner, sorted(held) or "none")
        self.held = held
        return held

    def _keep(self, owned: set[str], stop: threading.Event, round_over: threading.Event) -> None:
        renew_at = time.monotonic() + self.renew_s
        while not round_over.wait(0.1):  # a stop ends the round at once, not at the renewal
            if stop.is_set():
                break
            if time.monotonic() < renew_at:
                continue
            renew_at = time.monotonic() + self.renew_s
            try:
                if self.take() != owned:
                    break
            except Exception as exc:  # noqa: BLE001 -- cannot renew: stop before the lease runs out
                log.warning("leases %s: cannot renew: %s: %s", self.prefix,
                            type(exc).__name__, exc)
                self.held = set()
                break
        round_over.set()

    def release_all(self) -> None:
        """Hand every lease over at once (a clean stop)."""
        names = [self.prefix + n for n in self.held]
        if self.pool is not None:
            names.append(f"member:{self.pool}:{self.owner}")
        for name in names:
            try:
                self.leases.release(name, self.owner)
            except Exception as exc:  # noqa: BLE001 -- the store is away: the lease expires on its own
                log.debug("release %s: %s", name, exc)
        self.held = set()
