"""``touchstream import cdr --retry-quarantined``: rows refused for a reason that has since
gone away are recorded; rows refused again stay; the summary says how many wait."""

from __future__ import annotations

import json
import os
import subprocess
from collections import Counter
from pathlib import Path
from uuid import uuid4

from commands import messages as m
from tests.conftest import store_env
from tests.support.cli_fork import run_cli
from tests.support.hubs import make_hub, orphan_claim

ROOT = Path(__file__).resolve().parents[2]
GOOD = (
    '"","02079460018","100","from-pstn","","SIP/trunk-1","SIP/201-2","Dial","SIP/201",'
    '"2026-11-24 09:00:00","2026-11-24 09:00:41","2026-11-24 09:05:53",353,312,"ANSWERED",'
    '"DOCUMENTATION","retry.1",""\n'
)
MALFORMED = '"","02079460018","100","not enough columns"\n'


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(args, {**os.environ, **env})


def test_retry_records_rows_whose_refusal_went_away_and_keeps_the_others(
    tmp_path: Path
) -> None:
    env = store_env("sqlite", tmp_path / "data")
    owner = uuid4()
    hub = make_hub(env)
    try:  # a registration killed after its claim: calls from the number are refused for now
        orphan_claim(hub, "phone", "+442079460018", owner=owner)
    finally:
        hub.close()
    cdr = tmp_path / "Master.csv"
    cdr.write_text(GOOD + MALFORMED)
    first = cli(env, "import", "cdr", str(cdr), "--timezone", "UTC")
    assert first.returncode == 1, first.stderr
    summary = json.loads(first.stdout)
    assert (summary["recorded"], summary["rejected"], summary["malformed"]) == (0, 1, 1)
    assert summary["waiting_in_quarantine"] == 2 and summary["quarantine"]

    hub = make_hub(env)
    try:  # the registration is finished: the reason for the refusal has gone away
        hub.execute(m.RegisterCustomer(
            customer_id=owner, name="Smith", source_key="reg:smith",
            contact_points=[m.ContactPointIn(kind="phone", value="+442079460018")],
        ))
    finally:
        hub.close()
    retried = cli(env, "import", "cdr", "--retry-quarantined", "--timezone", "UTC")
    assert retried.returncode == 1, retried.stderr  # the malformed row still waits
    summary = json.loads(retried.stdout)
    assert summary["retry"] == {"retried": 2, "recorded": 1, "duplicates": 0,
                                "held_for_triage": 0}
    assert summary["waiting_in_quarantine"] == 1
    lines = (tmp_path / "data" / "quarantine" / "cdr.jsonl").read_text().splitlines()
    assert [json.loads(line)["reason"].split(":")[0] for line in lines] == ["malformed"]

    again = cli(env, "import", "cdr", str(cdr), "--retry-quarantined", "--timezone", "UTC")
    summary = json.loads(again.stdout)
    assert (summary["retry"]["recorded"], summary["rows"], summary["waiting_in_quarantine"]) \
        == (0, 0, 1)
    hub = make_hub(env)
    try:
        kinds = Counter(type(e).__name__ for e in hub.stream(owner))
        assert kinds["CallLogged"] == 1
    finally:
        hub.close()


def test_import_cdr_without_a_file_or_retry_is_refused(tmp_path: Path) -> None:
    result = cli(store_env("sqlite", tmp_path / "data"), "import", "cdr")
    assert result.returncode == 2 and "--retry-quarantined" in result.stderr
