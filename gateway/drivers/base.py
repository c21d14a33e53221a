"""What every SMS gateway driver provides, and the two ways a submission can fail."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class OutgoingSms:
    """One SMS handed to a driver."""

    id: int  # our message id: the DLR comes back with it
    to: str  # E.164
    sender: str  # shortcode, long number or alphanumeric sender ID
    text: str
    encoding: str  # "gsm7" or "ucs2"


class GatewayError(Exception):
    """A submission the gateway did not accept."""


class TransientError(GatewayError):
    """Worth retrying later: timeout, refused connection, 5xx, throttling."""


class PermanentError(GatewayError):
    """The gateway said no for good (4xx, rejected number): never retried."""


class Driver(Protocol):
    name: str

    async def submit(self, sms: OutgoingSms) -> str | None:
        """Hand one SMS to the gateway; return its id there (None when it gives none).

        Raises TransientError or PermanentError with the gateway's reason.
        """
        ...

    async def aclose(self) -> None: ...
