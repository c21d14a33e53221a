"""Store the SMS once: a gateway that retries gets the first verdict, not a second reply."""

from __future__ import annotations

from inbound.model import Decision
from inbound.steps.base import Context
from store import inbound as store


class Dedup:
    name = "dedup"
    description = "Stop an SMS already received (same gateway id, or same sender, text, time)."

    def check(self, ctx: Context) -> Decision:
        sms = ctx.sms
        if ctx.dry_run:
            existing = store.find_inbound(ctx.session, sms.dedup_key)
            if existing is not None:
                return self._duplicate(existing.id)
            return Decision(self.name, "new", "not received before")
        inbound_id = store.insert_inbound(
            ctx.session, dedup_key=sms.dedup_key, sender=sms.sender, receiver=sms.receiver,
            text=sms.text, gateway_id=sms.gateway_id, gateway_time=sms.gateway_time,
            received_at=sms.received_at or ctx.now)
        if inbound_id is None:
            existing = store.find_inbound(ctx.session, sms.dedup_key)
            return self._duplicate(existing.id if existing else None)
        ctx.inbound_id = inbound_id
        return Decision(self.name, "new", f"stored as inbound #{inbound_id}")

    def _duplicate(self, inbound_id: int | None) -> Decision:
        return Decision(self.name, "duplicate",
                        f"already received as inbound #{inbound_id}: the gateway sent it "
                        "again; nothing more is done", done=True)
