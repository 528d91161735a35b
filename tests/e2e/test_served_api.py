"""The served app (``touchstream serve`` as a process) against its own OpenAPI document.

schemathesis generates requests for every operation from the document the
server publishes and sends them with every role's key; every answer must have a
documented status, content type and headers, match its schema, and never be a
5xx. A fixed example budget keeps the run short: each operation gets ``EXAMPLES``
valid inputs, dealt out over the roles in turn so that every role sends at least one
to every operation (all twelve roles sent all four examples: 48 requests an
operation, 169 s of a CI worker), and ``EXAMPLES`` invalid ones with the admin key.
The server's request-head limits are tested here too, over a real socket.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.errors import SchemathesisError
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.transport.requests import ManagedCookiesSession

from tests.conftest import store_env
from tests.support.demo import seed_demo
from tests.support.hubs import make_hub
from touchstream import settings as settings_mod
from touchstream.adapters.keys import ROLES, open_key_store
from touchstream.http_limits import MAX_HEAD_BYTES, MAX_HEADERS

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = 4  # per operation and pass; a valid example goes to every EXAMPLES-th role
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_headers_conformance, response_schema_conformance]
WEBHOOK_SECRETS = {
    "TOUCHSTREAM_CTI_SECRET": "cti-secret-for-the-served-test",
    "TOUCHSTREAM_FAX_SECRET": "fax-secret-for-the-served-test",
    "TOUCHSTREAM_TWILIO_AUTH_TOKEN": "twilio-token-for-the-served-test",
    "TOUCHSTREAM_PUBLIC_BASE_URL": "https://hub.example.org",
}


@dataclass
class Served:
    url: str
    tokens: dict[str, str]  # role → token


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _server_log(proc: subprocess.Popen[bytes]) -> str:
    path = getattr(proc, "log_path", None)
    return Path(path).read_text(errors="replace")[-4000:] if path else ""


def _wait_until_serving(url: str, proc: subprocess.Popen[bytes], token: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        try:
            answer = httpx.get(f"{url}/projections/status", timeout=2,
                               headers={"Authorization": f"Bearer {token}"})
            items = answer.json().get("items", []) if answer.status_code == 200 else []
            if items and all(s["lag_events"] == 0 for s in items):
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    proc.kill()
    proc.wait()
    pytest.fail(f"server did not start or catch up: {_server_log(proc)}")


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    env = {**store_env("sqlite", tmp_path_factory.mktemp("served") / "data"), **WEBHOOK_SECRETS}
    hub = make_hub(env)
    seed_demo(hub)
    hub.close()
    keys = open_key_store(settings_mod.load(env))
    tokens = {role: keys.create(role, "p-north" if role == "partner" else None,
                                f"served-{role}")[1] for role in ROLES}
    keys.close()
    port = _free_port()
    # The server's log goes to a file: a pipe nobody reads fills up and blocks the
    # server on its next log line (a traceback is enough).
    log = (tmp_path_factory.mktemp("served-log") / "serve.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "touchstream.cli", "serve", "--port", str(port)],
        cwd=ROOT, env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=log,
    )
    proc.log_path = log.name  # type: ignore[attr-defined]
    url = f"http://127.0.0.1:{port}"
    _wait_until_serving(url, proc, tokens["admin"])
    try:
        yield Served(url=url, tokens=tokens)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


# Valid requests with every role's key (what each role may read and write, partner
# scoping included); invalid ones with the admin key (roles are checked before input).
PASSES = ((schemathesis.GenerationMode.POSITIVE, ROLES),
          (schemathesis.GenerationMode.NEGATIVE, ("admin",)))


def _exercise(served: Served, operation: Any, mode: Any, roles: tuple[str, ...],
              session: ManagedCookiesSession, sent: set[str], *, deal: bool = True
              ) -> Callable[[], None]:
    """A hypothesis test sending each generated case with the keys of ``roles``: dealt
    out (the k-th case with every EXAMPLES-th role from the k-th on), or each case with
    all of them. Each role a case went out with is added to ``sent``."""
    turn = iter(range(1 << 30))

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
    def exercise(case: schemathesis.Case) -> None:
        k = next(turn) % EXAMPLES
        for role in roles[k::EXAMPLES] if deal else roles:
            sent.add(role)
            case.call_and_validate(base_url=served.url, session=session, checks=CHECKS,
                                   headers={"Authorization": f"Bearer {served.tokens[role]}"})

    return exercise  # type: ignore[no-any-return]


# One test walks every operation (the served schema is only known once the server runs):
# its time grows with the API, so it gets its own bound.
@pytest.mark.timeout(900)
def test_every_operation_answers_as_documented_for_every_role(served: Served) -> None:
    # The server builds its 1.1 MB document on the first ask: 17.8 s of a loaded 2-core
    # machine (load 12), past schemathesis's default 10 s read timeout.
    schema = schemathesis.openapi.from_url(f"{served.url}/openapi.json", timeout=120)
    failures: list[str] = []
    operations = 0
    # One keep-alive session for every request, not a new connection each (schemathesis's
    # default): the same requests, cookies dropped after each (as without a session) and
    # redirects followed only on the same host, as schemathesis's own session does.
    session = ManagedCookiesSession()
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1
        raw = operation.definition.raw
        has_input = bool(raw.get("parameters") or raw.get("requestBody"))
        for mode, roles in PASSES:
            negative = mode == schemathesis.GenerationMode.NEGATIVE
            if negative and not has_input:
                continue
            sent: set[str] = set()
            try:
                _exercise(served, operation, mode, roles, session, sent)()
                # Fewer cases than EXAMPLES (an operation without input has one): the
                # roles left out get them all, so every role has asked every operation.
                left = tuple(r for r in roles if r not in sent)
                if left:
                    _exercise(served, operation, mode, left, session, sent, deal=False)()
            except (AssertionError, FailureGroup, SchemathesisError) as exc:
                failures.append(f"{operation.label} ({mode}): {exc}")
            except Unsatisfiable:
                # Only string inputs (a form's name): nothing to send that breaks the schema.
                assert negative, operation.label
            else:
                assert sent == set(roles), (operation.label, mode, sorted(set(roles) - sent))
    session.close()
    assert operations >= 25
    assert not failures, "\n\n".join(failures)


def _raw_request(url: str, head: bytes) -> bytes:
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        try:
            sock.sendall(head)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed while we were still sending
        chunks = []
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)


def test_a_huge_header_is_refused_with_431_before_any_key_is_checked(served: Served) -> None:
    huge = b"GET /customers/search?q=ada HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (32 << 20)
    answer = _raw_request(served.url, huge + b"\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 431 "), answer[:200]
    assert b'"error":"headers_too_large"' in answer and b'"reason":' in answer
    assert httpx.get(f"{served.url}/health").status_code == 200


def test_too_many_headers_are_refused_and_a_normal_head_is_not(served: Served) -> None:
    many = b"".join(b"X-H%d: v\r\n" % i for i in range(MAX_HEADERS + 1))
    answer = _raw_request(served.url, b"GET /health HTTP/1.1\r\nHost: x\r\n" + many + b"\r\n")
    assert answer.startswith(b"HTTP/1.1 431 "), answer[:200]
    assert b"more than" in answer
    fine = httpx.get(f"{served.url}/health", headers={
        "X-Padding": "p" * (MAX_HEAD_BYTES // 2),
        **{f"X-H{i}": "v" for i in range(MAX_HEADERS - 10)}})
    assert fine.status_code == 200
    body = httpx.post(f"{served.url}/commands/add-note", content=b"x" * 2_000_000,
                      headers={"Authorization": f"Bearer {served.tokens['agent']}",
                               "Content-Type": "application/json"})
    assert body.status_code == 413  # a large body is the body limit's business, not 431
