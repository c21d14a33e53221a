"""Persistence: SQLModel tables, the engine, and every query the product runs."""
