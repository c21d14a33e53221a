"""The marketing window as a function, for the store's resume and release."""

from __future__ import annotations

from datetime import datetime

from mail2sms.config import Config
from sms.window import next_allowed
from store.sends import MarketingWindow


def window_for(config: Config) -> MarketingWindow:
    """The first instant marketing SMS may go at or after a given one (config rules):
    a marketing send resumed or released at night waits for the morning."""
    compliance = config.compliance

    def first_allowed(when: datetime) -> datetime:
        return next_allowed(when, compliance.marketing_window, timezone=compliance.timezone,
                            country=compliance.country)

    return first_allowed
