"""ConsoleDriver: one JSON line per SMS, flushed before the call returns."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from gateway.drivers.base import OutgoingSms, TransientError
from gateway.drivers.console import ConsoleDriver


def sms(i: int, text: str = "Bonjour", encoding: str = "gsm7") -> OutgoingSms:
    return OutgoingSms(id=i, to=f"+3361234{i:04d}", sender="36105", text=text, encoding=encoding)


def read_lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


async def test_writes_one_utf8_json_line_and_returns_console_id(tmp_path: Path) -> None:
    path = tmp_path / "out" / "sent.jsonl"
    driver = ConsoleDriver(str(path))
    try:
        gateway_id = await driver.submit(sms(7, "Café à 9 h 30 ✓", "ucs2"))
        # Visible to another reader before aclose: the line was flushed.
        raw = path.read_bytes()
    finally:
        await driver.aclose()
    assert gateway_id == "console-7"
    assert "Café à 9 h 30 ✓".encode() in raw  # ensure_ascii off: real UTF-8, no \u escapes
    [line] = read_lines(path)
    assert set(line) == {"id", "to", "from", "text", "encoding", "at"}
    assert line["id"] == 7
    assert line["to"] == "+33612340007"
    assert line["from"] == "36105"
    assert line["encoding"] == "ucs2"
    assert str(line["at"]).endswith("+00:00")


async def test_concurrent_submits_keep_every_line_whole(tmp_path: Path) -> None:
    path = tmp_path / "sent.jsonl"
    driver = ConsoleDriver(str(path))
    try:
        text = "x" * 500 + "\n" + "é" * 100  # a newline inside the text stays escaped
        ids = await asyncio.gather(*(driver.submit(sms(i, text)) for i in range(1, 501)))
    finally:
        await driver.aclose()
    assert sorted(ids) == sorted(f"console-{i}" for i in range(1, 501))
    lines = read_lines(path)
    assert sorted(int(str(line["id"])) for line in lines) == list(range(1, 501))
    assert all(line["text"] == text for line in lines)


async def test_appends_to_an_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "sent.jsonl"
    path.write_text('{"id": 0}\n', encoding="utf-8")
    driver = ConsoleDriver(str(path))
    await driver.submit(sms(1))
    await driver.aclose()
    assert [line["id"] for line in read_lines(path)] == [0, 1]


async def test_unwritable_path_is_a_transient_error(tmp_path: Path) -> None:
    driver = ConsoleDriver(str(tmp_path))  # a directory cannot be opened for append
    try:
        with pytest.raises(TransientError, match="cannot write"):
            await driver.submit(sms(1))
    finally:
        await driver.aclose()
