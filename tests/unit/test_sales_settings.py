"""The pipeline comes from a settings file: read, validated with a clear error, and used by
the write model's sales commands."""

from __future__ import annotations

from pathlib import Path
from uuid import uuid4

import pytest

from commands import messages as m
from commands import sales as s
from domain.sales import DEFAULT_PIPELINE, SalesRuleError
from touchstream import settings as settings_mod
from touchstream.wiring import build_hub

PIPELINE = """
loss_reasons = ["price", "ghosted"]
won = 100
lost = 0

[[stages]]
name = "lead"
probability = 5

[[stages]]
name = "offer"
probability = 60
"""


def test_the_default_pipeline_is_the_issue_s(sqlite_env: dict[str, str]) -> None:
    conf = settings_mod.load(sqlite_env)
    assert conf.sales.pipeline() == DEFAULT_PIPELINE
    assert [(st.name, st.probability) for st in DEFAULT_PIPELINE.all_stages] == [
        ("qualification", 10), ("needs analysis", 20), ("proposal", 50), ("negotiation", 80),
        ("won", 100), ("lost", 0)]


def test_a_pipeline_file_drives_the_commands(sqlite_env: dict[str, str], tmp_path: Path) -> None:
    path = tmp_path / "pipeline.toml"
    path.write_text(PIPELINE)
    hub = build_hub(settings_mod.load({**sqlite_env, "TOUCHSTREAM_SALES_PIPELINE_FILE":
                                       str(path)}))
    try:
        cid = uuid4()
        hub.execute(m.RegisterCustomer(customer_id=cid, name="Ada"))
        opp = uuid4()
        hub.execute(s.OpenOpportunity(customer_id=cid, opportunity_id=opp, title="t",
                                      amount="10", currency="EUR", expected_close="2027-01-01",
                                      owner="mia"))
        hub.execute(s.MoveOpportunityStage(customer_id=cid, opportunity_id=opp,
                                           to_stage="offer"))
        with pytest.raises(SalesRuleError, match="'price', 'ghosted'|price, ghosted"):
            hub.execute(s.LoseOpportunity(customer_id=cid, opportunity_id=opp,
                                          reason="competitor"))
        moved = [e for e in hub.stream(cid) if type(e).__name__ == "OpportunityStageMoved"]
        assert [(e.from_stage, e.to_stage, e.probability) for e in moved] == [
            ("lead", "offer", 60)]
    finally:
        hub.close()


@pytest.mark.parametrize(("text", "reason"), [
    ("[[stages]]\nname = 'a'\nprobability = 120\n", "0–100"),
    ("[[stages]]\nname = 'a'\nprobability = 0.5\n", "whole percentage"),
    ("colour = 'red'\n", "unknown keys"),
    ("loss_reasons = []\n[[stages]]\nname = 'a'\nprobability = 5\n", "loss reason"),
    ("[[stages]]\nname = 'won'\nprobability = 5\n", "unique"),
    ("not toml [", "TOUCHSTREAM_SALES_PIPELINE_FILE"),
])
def test_a_bad_pipeline_file_is_refused_naming_the_setting(
        sqlite_env: dict[str, str], tmp_path: Path, text: str, reason: str) -> None:
    path = tmp_path / "pipeline.toml"
    path.write_text(text)
    with pytest.raises(settings_mod.SettingsError) as caught:
        settings_mod.load({**sqlite_env, "TOUCHSTREAM_SALES_PIPELINE_FILE": str(path)})
    assert "TOUCHSTREAM_SALES_PIPELINE_FILE" in str(caught.value)
    assert reason in str(caught.value)
