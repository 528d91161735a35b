"""``touchstream projections run|status|rebuild``: the read models' worker and tools."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import time
from typing import Any

from projections import registry
from projections.engine import UnknownProjectionError
from projections.runner import ProjectionRunner
from projections.status import status
from replays.progress import ProgressBar
from replays.rebuild import rebuild
from touchstream.bootstrap import bootstrap, opened
from touchstream.cli.errors import CliError
from touchstream.cli.exits import Exit


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
    rb.set_defaults(func=_rebuild)


def _select(names: list[str]) -> list[Any]:
    try:
        return registry.select(names)
    except UnknownProjectionError as exc:
        raise CliError(str(exc)) from exc


def _run(args: argparse.Namespace) -> int:
    if args.batch < 1:
        raise CliError("--batch must be at least 1")
    deps = bootstrap()
    chosen = _select(args.names)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    runner = ProjectionRunner(deps.read_store, deps.event_source, chosen, batch=args.batch)

    def stop(signum: int, _frame: Any) -> None:
        runner.request_stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"touchstream: following {', '.join(p.name for p in chosen)}", file=sys.stderr,
          flush=True)
    try:
        runner.run_forever()
    finally:
        deps.close()
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
    if args.json:
        print(json.dumps([r.as_dict() for r in rows], sort_keys=True))
        return Exit.OK
    if not rows:
        print("no read model built yet: run 'touchstream projections run'")
        return Exit.OK
    print(f"{'name':<10} {'gen':>4} {'live':>4} {'position':>10} {'lag':>8} {'lag s':>8} "
          f"{'rate/s':>9} {'updated':>20}")
    for r in rows:
        updated = (time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(r.updated_at))
                   if r.updated_at else "-")
        rate = f"{r.rate_per_s:,.0f}" if r.rate_per_s else "-"
        print(f"{r.name:<10} {r.generation:>4} {'yes' if r.live else 'no':>4} {r.position:>10} "
              f"{r.lag_events:>8} {r.lag_seconds:>8.2f} {rate:>9} {updated:>20}")
    return Exit.OK


def _rebuild(args: argparse.Namespace) -> int:
    if args.batch < 1:
        raise CliError("--batch must be at least 1")
    deps = bootstrap()
    chosen = _select(args.names)
    bar = ProgressBar.on_terminal("rebuild " + ",".join(p.name for p in chosen))
    try:
        results = rebuild(deps.read_store, deps.event_source(), chosen,
                          verify_only=args.verify_only, progress=bar, batch=args.batch)
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
