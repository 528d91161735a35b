"""``touchstream keys create|list|revoke``: API keys in the read store."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict

from touchstream.adapters.keys import ROLES, KeyStore
from touchstream.bootstrap import opened
from touchstream.cli import privacy
from touchstream.cli.common import print_json
from touchstream.cli.exits import Exit


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser("keys", help="create, list or revoke API keys")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    privacy.register_keys_actions(actions)

    p = actions.add_parser("create", help="create a key and print its token (shown once)")
    p.add_argument("--role", required=True, help=f"one of: {', '.join(ROLES)}")
    p.add_argument("--partner", help="partner id (partner keys only: the partner it may see)")
    p.add_argument("--name", default="", help="who or what uses the key")
    p.add_argument("--if-none", action="store_true",
                   help="only if no active key of this role exists (exit 0 either way)")
    p.set_defaults(func=_create)

    p = actions.add_parser("list", help="list keys as JSON lines (never the tokens)")
    p.set_defaults(func=_list)

    p = actions.add_parser("revoke", help="revoke a key by id")
    p.add_argument("id")
    p.set_defaults(func=_revoke)


@contextmanager
def _store() -> Iterator[KeyStore]:
    with opened() as deps:
        yield deps.keys  # its errors become exit codes in cli.errors (unknown key: not found)


def _create(args: argparse.Namespace) -> int:
    with _store() as keys:
        if args.if_none and any(k.active and k.role == args.role for k in keys.list_keys()):
            print(f"an active {args.role} key exists already (touchstream keys list); "
                  "its token was shown when it was created", file=sys.stderr)
            return Exit.OK
        key, token = keys.create(args.role, args.partner, args.name)
    print_json({**asdict(key), "token": token})
    print(f"keep this token now: it cannot be shown again. Use it as "
          f"'Authorization: Bearer {token}'", file=sys.stderr)
    return Exit.OK


def _list(args: argparse.Namespace) -> int:
    with _store() as keys:
        for key in keys.list_keys():
            print_json({**asdict(key), "active": key.active})
    return Exit.OK


def _revoke(args: argparse.Namespace) -> int:
    with _store() as keys:
        print_json(asdict(keys.revoke(args.id)))
    return Exit.OK
