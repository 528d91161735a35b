"""``touchstream serve``: the HTTP API on the configured stores."""

from __future__ import annotations

import argparse

from touchstream.bootstrap import bootstrap
from touchstream.cli.errors import CliError
from touchstream.cli.exits import Exit


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("serve", help="serve the HTTP API (uvicorn)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    p.add_argument("--no-projections", action="store_true",
                   help="don't run the projections in this process (run "
                        "'touchstream projections run' as a separate worker)")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    if not 0 < args.port < 65536:
        raise CliError(f"--port must be 1–65535, got {args.port}")
    if args.workers < 1:
        raise CliError(f"--workers must be at least 1, got {args.workers}")
    from touchstream import serve  # FastAPI and uvicorn load only when serving

    serve.run(bootstrap(), host=args.host, port=args.port, workers=args.workers,
              projections=not args.no_projections)
    return Exit.OK
