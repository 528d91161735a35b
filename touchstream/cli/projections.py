"""``touchstream projections run|status|rebuild``: the read models' worker and tools."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from functools import partial
from typing import Any

from projections import registry
from projections.analyst import installed as analyst
from projections.analyst.spec import SpecError, load_spec
from projections.engine import UnknownProjectionError, retire
from projections.status import status
from replays.fill import PARALLEL_MIN_EVENTS, default_workers
from replays.progress import ProgressBar
from replays.rebuild import rebuild
from touchstream import logs
from touchstream.bootstrap import bootstrap, event_source_of, opened
from touchstream.cli.errors import CliError, NotFoundError
from touchstream.cli.exits import Exit
from touchstream.read_side import leased_projections


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("projections", help="run, inspect and rebuild the read models")
    psub = p.add_subparsers(dest="projections_command", metavar="ACTION", required=True)
    names = ", ".join(registry.PROJECTIONS)

    run = psub.add_parser("run", help="follow the event log and keep read models up to date "
                                      "(until SIGTERM/SIGINT)")
    run.add_argument("names", nargs="*", metavar="NAME", help=f"read models (default all: {names})")
    run.add_argument("--batch", type=int, default=1000, help="events per transaction")
    run.set_defaults(func=_run)

    st = psub.add_parser("status", help="position, lag (events, seconds) and rate per read model")
    st.add_argument("--json", action="store_true", help="print JSON")
    st.set_defaults(func=_status)

    rb = psub.add_parser("rebuild", help="rebuild from position 0 beside the live model, "
                                         "compare checksums, swap")
    rb.add_argument("names", nargs="+", metavar="NAME", help=f"read models ({names})")
    rb.add_argument("--verify-only", action="store_true",
                    help="compare without swapping; exit 1 naming the first differing rows")
    rb.add_argument("--batch", type=int, default=1000, help="events per transaction")
    rb.add_argument("--workers", type=int, default=default_workers(),
                    help="processes filling the new generations, each reading the log once "
                         f"(default one per core, at most 4; a log under "
                         f"{PARALLEL_MIN_EVENTS:,} events is filled by one)")
    rb.set_defaults(func=_rebuild)

    add = psub.add_parser("add", help="make an analyst's projection file a live read model "
                                      "(built by the next 'projections run' or serve)")
    add.add_argument("file", metavar="FILE.py", help="an analyst projection (README: Replays)")
    add.set_defaults(func=_add)
    rm = psub.add_parser("remove", help="drop a live analyst projection and its tables")
    rm.add_argument("name", metavar="NAME", help="analyst_<name> or <name>")
    rm.set_defaults(func=_remove)


def _select(names: list[str], deps: Any) -> list[Any]:
    db = deps.read_store.connect()
    try:
        return registry.select(names, analyst.installed(db))
    except UnknownProjectionError as exc:
        raise CliError(str(exc)) from exc
    finally:
        db.close()


def read_spec(path: str) -> Any:
    """An analyst file, loaded (``CliError`` naming what is wrong)."""
    try:
        with open(path, encoding="utf-8") as f:
            source = f.read()
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror}") from exc
    try:
        return load_spec(source, path)
    except SpecError as exc:
        raise CliError(str(exc)) from exc
    except Exception as exc:
        raise CliError(f"{path}: its top level raised {type(exc).__name__}: {exc}") from exc


def _add(args: argparse.Namespace) -> int:
    spec = read_spec(args.file)
    with opened() as deps:
        db = deps.read_store.connect()
        try:
            new = analyst.add(db, spec)
        finally:
            db.close()
    name = analyst.PREFIX + spec.name
    if not new:
        print(f"{name}: already live with this file (nothing changed)")
        return Exit.OK
    print(f"{name}: added; 'touchstream projections run' (or serve) builds it from the start "
          f"of the log; 'touchstream projections rebuild {name} --verify-only' proves it")
    return Exit.OK


def _remove(args: argparse.Namespace) -> int:
    with opened() as deps:
        db = deps.read_store.connect()
        try:
            projection = next((p for p in analyst.installed(db)
                               if p.name in (args.name, analyst.PREFIX + args.name)), None)
            if projection is None or not analyst.remove(db, projection.name):
                raise NotFoundError(f"no live analyst projection named {args.name!r}")
            retire(db, projection)
        finally:
            db.close()
    print(f"{projection.name}: removed, its tables dropped")
    return Exit.OK


def _run(args: argparse.Namespace) -> int:
    if args.batch < 1:
        raise CliError("--batch must be at least 1")
    deps = bootstrap()
    chosen = _select(args.names, deps)
    logs.configure(deps.settings.operations.log_format)  # JSON lines unless on a terminal
    # its share of the read models among the workers on this read store, by lease
    runner = leased_projections(deps, args.names or None, batch=args.batch)

    def stop(signum: int, _frame: Any) -> None:
        runner.request_stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"touchstream: following its share of {', '.join(p.name for p in chosen)} "
          f"(one worker per read model, by lease)", file=sys.stderr, flush=True)
    try:
        runner.run_forever()
    finally:
        deps.close()
    if runner.all_stopped:
        print("touchstream: every read model stopped at an event it cannot use (a damaged "
              "store?): see 'touchstream projections status'", file=sys.stderr, flush=True)
        return Exit.DAMAGED
    print("touchstream: projections stopped", file=sys.stderr, flush=True)
    return Exit.OK


def _status(args: argparse.Namespace) -> int:
    with opened() as deps:
        source = deps.event_source()
        db = deps.read_store.connect()
        try:
            rows = status(db, source.head(), recorded_after=source.recorded_at_us)
        finally:
            db.close()
            source.close()
    code = Exit.DAMAGED if any(r.stopped_at is not None for r in rows) else Exit.OK
    if args.json:
        print(json.dumps([r.as_dict() for r in rows], sort_keys=True))
        return code
    if not rows:
        print("no read model built yet: run 'touchstream projections run'")
        return Exit.OK
    w = max(10, *(len(r.name) for r in rows))
    print(f"{'name':<{w}} {'gen':>4} {'live':>4} {'position':>10} {'lag':>8} {'lag s':>8} "
          f"{'rate/s':>9} {'updated':>20}")
    for r in rows:
        updated = (time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(r.updated_at))
                   if r.updated_at else "-")
        rate = f"{r.rate_per_s:,.0f}" if r.rate_per_s else "-"
        print(f"{r.name:<{w}} {r.generation:>4} {'yes' if r.live else 'no':>4} {r.position:>10} "
              f"{r.lag_events:>8} {r.lag_seconds:>8.2f} {rate:>9} {updated:>20}")
    for r in rows:
        if r.stopped_at is not None:
            print(f"{r.name} generation {r.generation} STOPPED at position {r.stopped_at} "
                  f"({r.stopped_event}): {r.stopped_reason}")
    return code


def _rebuild(args: argparse.Namespace) -> int:
    if args.batch < 1:
        raise CliError("--batch must be at least 1")
    if args.workers < 1:
        raise CliError("--workers must be at least 1")
    deps = bootstrap()
    chosen = _select(args.names, deps)
    bar = ProgressBar.on_terminal("rebuild " + ",".join(p.name for p in chosen))
    try:
        results = rebuild(deps.read_store, deps.event_source(), chosen,
                          verify_only=args.verify_only, progress=bar, batch=args.batch,
                          workers=args.workers,
                          source_factory=partial(event_source_of, deps.settings))
    finally:
        bar.done()
        deps.close()
    code = Exit.OK
    for r in results:
        c = r.comparison
        rows = sum(n for n, _ in c.rows.values())
        verdict = "equal" if c.equal else f"DIFFERENT ({c.differing_rows} rows)"
        action = "swapped in" if r.swapped else "discarded (verify only)"
        print(f"{r.name}: rebuilt generation {r.rebuilt_generation} at position {c.position}: "
              f"{verdict} to live generation {r.live_generation} ({rows} rows, "
              f"sha256 {c.rebuilt_checksum[:16]}); {action}")
        for d in c.differences:
            print(f"  {d.describe()}")
        if not c.equal and args.verify_only:
            code = Exit.PROBLEMS
    return code
