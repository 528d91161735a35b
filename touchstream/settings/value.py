"""Value and retention analytics settings (``TOUCHSTREAM_VALUE_*``): churn window, CLV, tiers.

Applied at read time (``domain.value``), so a change needs no rebuild.
"""

from __future__ import annotations

from decimal import Decimal

from pydantic import Field, PositiveInt, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from domain.sales import currency_code
from domain.value import ValuePolicy, check_bands
from touchstream.settings.base import Section


class ValueSettings(Section):
    model_config = SettingsConfigDict(env_prefix="TOUCHSTREAM_VALUE_")
    title = "Value and retention analytics"

    churn_window_months: PositiveInt = Field(6, description=(
        "Cohorts: a customer with no purchase and no interaction in this many months (the "
        "month itself included) counts as churned; an explicit loss counts at once."))
    count_outbound: bool = Field(False, description=(
        "Cohorts: outbound touchpoints (our calls and emails) count as interactions too; by "
        "default only what the customer did (inbound, visits, forms) keeps them active."))
    margin: Decimal = Field(Decimal("0.30"), ge=0, le=1, description=(
        "Historic CLV: the margin as a share of revenue (0–1)."))
    discount_rate: Decimal = Field(Decimal("0.10"), gt=-1, le=10, description=(
        "Historic CLV: the annual rate at which past margins are carried to the as-of date."))
    currency: str = Field("EUR", description=(
        "CLV and tiers: the currency whose orders count (ISO 4217)."))
    tier_key_share: Decimal = Field(Decimal("0.50"), description=(
        "Value tiers: key customers make up this cumulative share of revenue (0–1)."))
    tier_major_share: Decimal = Field(Decimal("0.80"), description=(
        "Value tiers: key and major customers together make up this share."))
    tier_ordinary_share: Decimal = Field(Decimal("0.95"), description=(
        "Value tiers: key, major and ordinary together make up this share; the rest are small."))

    @field_validator("currency")
    @classmethod
    def _currency(cls, value: str) -> str:
        try:
            return currency_code(value)
        except ValueError as exc:
            raise ValueError(str(exc)) from exc

    @model_validator(mode="after")
    def _bands_rise(self) -> ValueSettings:
        shares = [format(s, "f") for _, s in self.bands()]
        try:
            check_bands(self.bands())
        except ValueError as exc:
            raise ValueError("TOUCHSTREAM_VALUE_TIER_KEY_SHARE, _MAJOR_SHARE and "
                             "_ORDINARY_SHARE must rise strictly within (0, 1] "
                             f"(got {', '.join(shares)})") from exc
        return self

    def bands(self) -> tuple[tuple[str, Decimal], ...]:
        return (("key", self.tier_key_share), ("major", self.tier_major_share),
                ("ordinary", self.tier_ordinary_share))

    def policy(self) -> ValuePolicy:
        return ValuePolicy(self.churn_window_months, self.count_outbound, self.margin,
                           self.discount_rate, self.currency, self.bands())
