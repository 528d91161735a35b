"""``touchstream bench SCENARIO``: measured speed, as ratios to a ceiling from the same run."""

from __future__ import annotations

import argparse
from typing import Any

from replays.progress import ProgressBar
from touchstream.cli.common import print_json
from touchstream.cli.exits import Exit

# The harness loads only when a benchmark runs (it is not on the runtime import path);
# its scenarios are the modules in ``touchstream.bench.SCENARIOS``.
SCENARIO_NAMES = ("ingest", "phone", "email", "timeline", "projections", "audit", "replay")


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser(
        "bench", help="run a benchmark on fresh temporary stores",
        description="Run a benchmark scenario on fresh temporary stores (never your data) "
                    "and report its figures and its ratios to a ceiling measured in the same run. "
                    "'touchstream bench SCENARIO --help' lists a scenario's flags.",
    )
    parser.add_argument("scenario", choices=SCENARIO_NAMES, help="the scenario to run")
    parser.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    parser.set_defaults(func=_run)


def scenario_parser(name: str, module: Any) -> argparse.ArgumentParser:
    """The scenario's own flags, plus ``--json`` and ``--store``."""
    p = argparse.ArgumentParser(prog=f"touchstream bench {name}", description=module.__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--store", choices=("sqlite", "postgres"), default="sqlite",
                   help="event store to measure (postgres: TOUCHSTREAM_BENCH_POSTGRES_URI, "
                        "else an embedded server; default sqlite)")
    module.add_arguments(p)
    return p


def _run(args: argparse.Namespace) -> int:
    from touchstream.bench import TARGETS_KEY, load_scenarios

    module = load_scenarios()[args.scenario]
    chosen = scenario_parser(args.scenario, module).parse_args(args.rest)
    # Scenarios that seed a history first draw their set-up on this bar.
    chosen.setup_progress = ProgressBar.on_terminal(f"{args.scenario} set-up",
                                                    quiet=chosen.json)
    report = module.run(chosen)
    if chosen.json:
        print_json(report)
    else:
        print(render(report, getattr(module, TARGETS_KEY, {})))
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
        verdict = "met" if _meets(value, target) else "NOT met"
        lines.append(f"{name:<{width}}  {value:>14.3f}  {target[0]} {target[1]:g} ({verdict})")
    return "\n".join(lines)


def _meets(value: float, target: tuple[str, float]) -> bool:
    from touchstream.bench import meets

    return meets(value, target)
