"""Time travel: a customer as it happened by a date, and as the hub knew it then."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from commands import messages as m
from replays.audit import access
from tests.support.api import running_api
from tests.support.demo import T0, seed_demo
from touchstream.asof_routes import as_of_routes
from touchstream.cli import main


def test_the_as_of_view_folds_what_had_occurred_and_what_was_known(
        sqlite_env: dict[str, str], monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    for k, v in sqlite_env.items():
        monkeypatch.setenv(k, v)
    with running_api(sqlite_env, (as_of_routes,)) as api:
        ids = seed_demo(api.hub)
        cy = ids["cy"]
        before_sync = datetime.now(UTC)
        # A field visit done on T0 + 2 days but synced (recorded) only now.
        api.hub.execute(m.RecordVisit(customer_id=cy, visit_id="late-1",  # type: ignore[arg-type]
                                      visit_kind="field", staff="jo", purpose="repair",
                                      occurred_at=T0 + timedelta(days=2)))
        api.hub.execute(m.ChangeLifecycleStage(customer_id=cy, to_stage="current",  # type: ignore[arg-type]
                                               source_key="stage-late",
                                               occurred_at=T0 + timedelta(days=10)))
        url = f"/customers/{cy}/as-of"

        early = api.client.get(url, params={"at": str((T0 + timedelta(days=5)).date())},
                               headers=api.auth("agent"))
        assert early.status_code == 200, early.text
        body = early.json()
        assert body["exists"] and body["lifecycle_stage"] == "prospect"  # the change came later
        assert body["touchpoints"]["visit"] == 1 and body["open_callbacks"]
        assert "VisitRecorded" in {f["kind"] for f in body["learned_later"]}

        # As the hub knew it just before the sync: the late visit was not known yet.
        known = api.client.get(url, params={"at": str((T0 + timedelta(days=5)).date()),
                                            "known_at": before_sync.isoformat()},
                               headers=api.auth("analyst")).json()
        assert "visit" not in known["touchpoints"] and known["learned_later"] == []
        later = api.client.get(url, params={"at": str((T0 + timedelta(days=11)).date())},
                               headers=api.auth("agent")).json()
        assert later["lifecycle_stage"] == "current"
        before = api.client.get(url, params={"at": "2020-01-01"}, headers=api.auth()).json()
        assert before["exists"] is False and before["events"] == 0

        assert api.client.get(url, params={"at": "soon"}, headers=api.auth()).status_code == 422
        assert api.client.get(url, params={"at": "2026-03-01"},
                              headers=api.auth("partner")).status_code == 403
        missing = "00000000-0000-4000-8000-000000000000"
        assert api.client.get(f"/customers/{missing}/as-of", params={"at": "2026-03-01"},
                              headers=api.auth()).status_code == 404

        from projections.store import ReadStore
        from touchstream import settings as settings_mod

        db = ReadStore(settings_mod.load(sqlite_env).read_store).connect()
        try:
            reads = [r for r in access.records(db, customer_id=cy) if "as-of" in r.entry.route]
        finally:
            db.close()
        assert len(reads) == 4  # every answered read, none for the refused ones

    assert main(["customer", "as-of", cy, str((T0 + timedelta(days=5)).date()), "--json"]) == 0
    assert '"lifecycle_stage": "prospect"' in capsys.readouterr().out
    assert main(["customer", "as-of", cy, "2026-03-06"]) == 0
    assert "learned later: VisitRecorded" in capsys.readouterr().out
    assert main(["customer", "as-of", missing, "2026-03-06"]) == 4
    assert main(["customer", "as-of", cy, "tomorrow"]) == 2
