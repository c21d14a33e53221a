"""The inbound steps, one module each (GNU Mailman's rules shape)."""
