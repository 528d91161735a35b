"""An IMAP ingester in its own process, for crash tests: ``python -m tests.support.imap_ingest``.

argv[1] is a JSON job: ``env`` (settings), ``die`` ("after-record" or
"after-checkpoint" or null) and ``at`` (SIGKILL itself at that occurrence).
"""

from __future__ import annotations

import json
import os
import signal
import sys
from typing import Any

from channels.email.imap import IngestHooks
from tests.support.hubs import make_hub
from touchstream import settings as settings_mod
from touchstream.bootstrap import Dependencies
from touchstream.email_wiring import build_ingester


def main() -> None:
    run(json.loads(sys.argv[1]))


def run(job: dict[str, Any]) -> None:
    """One pass; a forked child can run it directly (no interpreter start-up to wait for)."""
    env: dict[str, str] = job["env"]
    count = {"n": 0}

    def maybe_die(*_: Any) -> None:
        count["n"] += 1
        if count["n"] >= job["at"]:
            os.kill(os.getpid(), signal.SIGKILL)

    hooks = IngestHooks(
        after_record=maybe_die if job.get("die") == "after-record" else None,
        after_checkpoint=maybe_die if job.get("die") == "after-checkpoint" else None,
    )
    hub = make_hub(env)
    ingester = build_ingester(Dependencies(settings_mod.load(env), hub=hub), hooks=hooks)
    reports = ingester.run_once()
    print(json.dumps([r.recorded for r in reports]), flush=True)
    hub.close()


if __name__ == "__main__":
    main()
