"""The admin's side of the rules: ``rules try`` and reloading a running server."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import httpx
import pytest

from tests.integration.test_cli import mail2sms, write_config
from tests.servers.mail2sms_server import Mail2SmsServer, base_config

pytestmark = pytest.mark.integration

TOKEN = "test-token"

RULES_V1 = """\
keywords:
  - keyword: HORAIRES
    reply: "Ouvert de 9h à 18h."
"""
RULES_V2 = """\
keywords:
  - keyword: HORAIRES
    reply: "Nouveaux horaires : 8h à 20h."
"""
BROKEN = """\
keywords:
  - keyword: HORAIRES
    reply: "{{ oops"
"""


def test_rules_try_shows_every_step_and_writes_nothing(tmp_path: Path) -> None:
    config = write_config(tmp_path / "site", rules="rules.yaml")
    (config.parent / "rules.yaml").write_text(RULES_V1, encoding="utf-8")
    text = mail2sms("rules", "try", "Horaires ?", "--from", "06 12 34 56 78",
                    "--config", str(config), cwd=config.parent)
    assert text.returncode == 0, text.stderr
    steps = [line.split()[0] for line in text.stdout.splitlines() if not line.startswith(" ")]
    assert steps[:9] == ["dedup", "empty", "optout", "optin", "help", "survey", "keyword",
                         "forward", "fallback"]
    assert "reply: Ouvert de 9h à 18h." in text.stdout
    as_json = mail2sms("rules", "try", "STOP", "--from", "0612345678", "--json",
                       "--config", str(config), cwd=config.parent)
    decisions = json.loads(as_json.stdout)
    assert decisions[-1]["step"] == "optout" and decisions[-1]["done"] is True
    # a dry run: the number is not on the opt-out list afterwards
    listed = mail2sms("optouts", "list", "--config", str(config), cwd=config.parent)
    assert listed.stdout.strip() == ""


def test_rules_try_refuses_a_broken_rules_file(tmp_path: Path) -> None:
    config = write_config(tmp_path / "site", rules="rules.yaml")
    (config.parent / "rules.yaml").write_text(BROKEN, encoding="utf-8")
    result = mail2sms("rules", "try", "x", "--from", "0612345678", "--config", str(config),
                      cwd=config.parent)
    assert result.returncode == 2
    assert "rules.yaml:3" in result.stderr


def reply_to(server: Mail2SmsServer, number: str, text: str, mo_id: str) -> list[str]:
    response = httpx.post(f"{server.http_url}/webhooks/mo", params={"token": TOKEN},
                          json={"from": number, "text": text, "id": mo_id}, timeout=5)
    assert response.status_code == 200, response.text
    outbox = Path(server.config["gateway"]["outbox_file"])
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if outbox.exists():
            sent = [json.loads(line) for line in outbox.read_text().splitlines()]
            texts = [s["text"] for s in sent if s["to"] == number]
            if texts:
                return texts
        time.sleep(0.05)
    raise AssertionError(f"no reply to {number}")


def wait_log(server: Mail2SmsServer, needle: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while needle not in server.log:
        assert time.monotonic() < deadline, f"{needle!r} not in the log:\n{server.log}"
        time.sleep(0.05)


def test_running_server_reloads_changed_rules_and_keeps_them_when_broken(
    tmp_path: Path,
) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES_V1, encoding="utf-8")
    with Mail2SmsServer(tmp_path, base_config(tmp_path, rules=str(rules))) as server:
        assert reply_to(server, "+33611111111", "horaires", "1") == ["Ouvert de 9h à 18h."]
        rules.write_text(RULES_V2, encoding="utf-8")
        wait_log(server, "rules reloaded")
        assert reply_to(server, "+33622222222", "horaires", "2") == [
            "Nouveaux horaires : 8h à 20h."]
        rules.write_text(BROKEN, encoding="utf-8")
        wait_log(server, "not reloaded, the previous rules stay in force")
        assert f"{rules}:3" in server.log
        assert reply_to(server, "+33633333333", "horaires", "3") == [
            "Nouveaux horaires : 8h à 20h."]


def test_sighup_reloads_at_once(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES_V1, encoding="utf-8")
    with Mail2SmsServer(tmp_path, base_config(tmp_path, rules=str(rules))) as server:
        before = server.log.count("rules reloaded")
        assert server.proc is not None
        server.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 5
        while server.log.count("rules reloaded") == before:
            assert time.monotonic() < deadline, server.log
            time.sleep(0.02)
