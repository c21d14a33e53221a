"""On PostgreSQL too, SMS handled a batch per transaction decide as one at a time."""

from __future__ import annotations

import uuid
from pathlib import Path

from tests.servers.postgres import PostgresServer
from tests.unit.test_inbound_batch import in_one_batch, one_at_a_time


async def test_a_batch_decides_as_one_sms_at_a_time_on_postgresql(
        tmp_path: Path, postgres_server: PostgresServer) -> None:
    # two fresh databases: the same traffic once SMS by SMS, once as one batch
    names = [f"test_{uuid.uuid4().hex[:16]}" for _ in range(2)]
    urls = [postgres_server.create_database(name) for name in names]
    try:
        expected = one_at_a_time(tmp_path / "one", urls[0])
        got = await in_one_batch(tmp_path / "batch", urls[1])
    finally:
        for name in names:
            postgres_server.drop_database(name)
    assert got == expected
    assert ("skipped", "opted out") in [r for line in got for r in line[2]]
