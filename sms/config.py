"""Settings for the SMS trade rules (the ``compliance`` block of the config)."""

from __future__ import annotations

from datetime import time
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


class MarketingWindow(BaseModel):
    """When marketing SMS may go out, in ``compliance.timezone``."""

    model_config = ConfigDict(extra="forbid")

    start: time = time(8, 0)
    end: time = time(20, 0)
    days: list[Weekday] = Field(default_factory=lambda: ["mon", "tue", "wed", "thu", "fri", "sat"])
    skip_public_holidays: bool = True


class ComplianceConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    country: str = "FR"  # ISO 3166 code: default phone region and public holidays
    timezone: str = "Europe/Paris"
    marketing_window: MarketingWindow = Field(default_factory=MarketingWindow)
    stop_mention: str = "STOP au 36105"
    max_per_number_per_day: int = 50
    transliterate: bool = False  # turn ’ ê NBSP ... into GSM-7 look-alikes to halve the cost
    max_segments: int = 10  # longer texts are refused with a clear reason
    allow_landlines: bool = False
