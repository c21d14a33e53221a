"""An SMS with no text (phones send them by mistake): kept, never answered."""

from __future__ import annotations

from inbound.model import Decision
from inbound.steps.base import Context


class Empty:
    name = "empty"
    description = "An SMS with no text is stored and not answered."

    def check(self, ctx: Context) -> Decision:
        if ctx.sms.text.strip():
            return Decision(self.name, "pass", "the SMS has text")
        return Decision(self.name, "empty", "the SMS has no text: nothing to answer or forward",
                        done=True)
