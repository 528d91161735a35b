"""Sales settings (``TOUCHSTREAM_SALES_*``): the pipeline's stages and loss reasons, RFM."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from pydantic import Field, PositiveInt, PrivateAttr, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from domain.sales import DEFAULT_PIPELINE, Pipeline, Stage, currency_code
from touchstream.settings.base import Section

PIPELINE_FILE_HELP = """A pipeline file (TOML):

    loss_reasons = ["price", "competitor", "no budget"]
    won = 100          # probability of the won stage (default 100)
    lost = 0           # probability of the lost stage (default 0)

    [[stages]]         # the open stages, in order
    name = "qualification"
    probability = 10
"""


class SalesSettings(Section):
    model_config = SettingsConfigDict(env_prefix="TOUCHSTREAM_SALES_")
    title = "Sales"

    pipeline_file: Path | None = Field(None, description=(
        "TOML file with the open stages and their probabilities (`[[stages]] name, "
        "probability`), `won`/`lost` probabilities and `loss_reasons`; default: qualification "
        "10, needs analysis 20, proposal 50, negotiation 80, won 100, lost 0."))
    rfm_period_days: PositiveInt = Field(365, description=(
        "RFM: frequency and monetary count the orders of this many days up to the as-of date."))
    rfm_currency: str = Field("EUR", description=(
        "RFM: the currency whose orders count (ISO 4217)."))

    _pipeline: Pipeline = PrivateAttr(DEFAULT_PIPELINE)

    @field_validator("rfm_currency")
    @classmethod
    def _currency(cls, value: str) -> str:
        try:
            return currency_code(value)
        except ValueError as exc:
            raise ValueError(str(exc)) from exc

    @model_validator(mode="after")
    def _read_pipeline(self) -> SalesSettings:
        if self.pipeline_file is not None:
            try:
                self._pipeline = pipeline_from(tomllib.loads(self.pipeline_file.read_text()))
            except (OSError, ValueError, TypeError, KeyError) as exc:
                raise ValueError(f"TOUCHSTREAM_SALES_PIPELINE_FILE "
                                 f"{str(self.pipeline_file)!r}: {exc}") from exc
        return self

    def pipeline(self) -> Pipeline:
        return self._pipeline


def pipeline_from(data: dict[str, Any]) -> Pipeline:
    """A pipeline from a parsed pipeline file (``ValueError`` naming what is wrong)."""
    unknown = set(data) - {"stages", "won", "lost", "loss_reasons"}
    if unknown:
        raise ValueError(f"unknown keys {sorted(unknown)}; {PIPELINE_FILE_HELP}")
    stages = data.get("stages")
    if not isinstance(stages, list) or not stages:
        raise ValueError(f"no [[stages]]; {PIPELINE_FILE_HELP}")
    opened = tuple(Stage(str(s["name"]), _percent(s["probability"])) for s in stages)
    extra: dict[str, Any] = {}
    if "won" in data:
        extra["won"] = Stage("won", _percent(data["won"]))
    if "lost" in data:
        extra["lost"] = Stage("lost", _percent(data["lost"]))
    if "loss_reasons" in data:
        reasons = data["loss_reasons"]
        if not isinstance(reasons, list) or not all(isinstance(r, str) for r in reasons):
            raise ValueError("loss_reasons must be a list of strings")
        extra["loss_reasons"] = tuple(reasons)
    return Pipeline(stages=opened, **extra)


def _percent(value: Any) -> int:
    if type(value) is not int or not 0 <= value <= 100:
        raise ValueError(f"probability {value!r} must be a whole percentage 0–100")
    return value
