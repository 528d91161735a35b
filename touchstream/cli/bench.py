"""``touchstream bench SCENARIO``: measured speed, as ratios to a ceiling from the same run."""

from __future__ import annotations

import argparse
from typing import Any

from replays.progress import ProgressBar
from touchstream.bench import TARGETS_KEY, load_scenarios, meets
from touchstream.cli.common import print_json
from touchstream.cli.exits import Exit


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser(
        "bench", help="run a benchmark on fresh temporary stores",
        description="Run a benchmark scenario on fresh temporary stores (never your data) "
                    "and report its figures and its ratios to a ceiling measured in the same run.",
    )
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", help="print one JSON object")
    common.add_argument("--store", choices=("sqlite", "postgres"), default="sqlite",
                        help="event store to measure (postgres: TOUCHSTREAM_BENCH_POSTGRES_URI, "
                             "else an embedded server; default sqlite)")
    scenarios = parser.add_subparsers(dest="scenario", metavar="SCENARIO", required=True)
    for name, module in load_scenarios().items():
        p = scenarios.add_parser(name, parents=[common], help=_summary(module),
                                 description=module.__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
        module.add_arguments(p)
        p.set_defaults(func=_run, module=module)


def _summary(module: Any) -> str:
    return (module.__doc__ or "").strip().splitlines()[0] if module.__doc__ else ""


def _run(args: argparse.Namespace) -> int:
    # Scenarios that seed a history first draw their set-up on this bar.
    args.setup_progress = ProgressBar.on_terminal(f"{args.scenario} set-up", quiet=args.json)
    report = args.module.run(args)
    if args.json:
        print_json(report)
    else:
        print(render(report, getattr(args.module, TARGETS_KEY, {})))
    return Exit.OK


def render(report: dict[str, Any], targets: dict[str, tuple[str, float]]) -> str:
    """A plain table: figures, then ratios with their targets."""
    lines = [f"scenario {report['scenario']} on {report['store']}", ""]
    width = max([len(k) for k in report["figures"]] + [len(k) for k in report["ratios"]] + [6])
    lines.append(f"{'figure':<{width}}  {'value':>14}")
    for name, value in report["figures"].items():
        lines.append(f"{name:<{width}}  {value:>14,.3f}")
    lines += ["", f"{'ratio':<{width}}  {'value':>14}  target"]
    for name, value in report["ratios"].items():
        target = targets.get(name)
        if target is None:
            lines.append(f"{name:<{width}}  {value:>14.3f}")
            continue
        verdict = "met" if meets(value, target) else "NOT met"
        lines.append(f"{name:<{width}}  {value:>14.3f}  {target[0]} {target[1]:g} ({verdict})")
    return "\n".join(lines)
