"""A separate writer process for concurrency tests: ``python -m tests.support.writer``.

Reads a JSON job from argv: the environment, a list of commands (kind + fields),
and whether to die (SIGKILL itself) right after the first append is durable.
Prints one JSON line per recorded command.
"""

from __future__ import annotations

import json
import os
import signal
import sys

from commands import messages as m
from tests.support.hubs import make_hub

KINDS = {**m.TOUCHPOINT_COMMANDS, "register": m.RegisterCustomer}


def main() -> None:
    job = json.loads(sys.argv[1])
    hub = make_hub(job["env"])
    for spec in job["commands"]:
        cmd = KINDS[spec["kind"]].model_validate(spec["fields"])
        result = hub.execute(cmd)
        if job.get("die_after_append"):
            os.kill(os.getpid(), signal.SIGKILL)
        print(json.dumps({"event_ids": result.event_ids, "duplicate": result.duplicate}), flush=True)
    hub.close()


if __name__ == "__main__":
    main()
