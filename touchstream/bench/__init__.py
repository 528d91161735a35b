"""Benchmarks: ``touchstream bench <scenario>``, each on fresh temporary stores.

A scenario is a module with ``add_arguments(parser)``, ``run(args) -> dict``
(``{"scenario", "store", "figures", "ratios"}``; every figure's unit is in its
key) and ``TARGETS`` (ratio name -> ``(">=" or "<=", bound)``). Speed targets
are ratios to a ceiling measured in the same run, never timed test assertions.

To add a scenario, add its module to ``SCENARIOS`` (one line).
"""

from __future__ import annotations

import importlib
from types import ModuleType

SCENARIOS: tuple[str, ...] = (
    "touchstream.bench.ingest",
    "touchstream.bench.phone",
    "touchstream.bench.email",
    "touchstream.bench.timeline",
    "touchstream.bench.projections",
    "touchstream.bench.audit",
    "touchstream.bench.replay",
)


TARGETS_KEY = "TARGETS"


def scenario_name(module: str) -> str:
    return module.rsplit(".", 1)[-1]


def load_scenarios() -> dict[str, ModuleType]:
    """Every registered scenario module, by name."""
    return {scenario_name(path): importlib.import_module(path) for path in SCENARIOS}


def meets(value: float, target: tuple[str, float]) -> bool:
    op, bound = target
    return value >= bound if op == ">=" else value <= bound
