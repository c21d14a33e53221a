"""check-config reads the rules file too, and names each problem by file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.test_cli import mail2sms, write_config

pytestmark = pytest.mark.integration

BROKEN = """\
keywords:
  - keyword: HORAIRES
    reply: "Ouvert {{ bogus }}"
  - keyword: ARRET
    reply: "x"
  - name: rdv
    regex: "RDV ([0-9]"
  - keyword: AVIS
    survey: nowhere
"""


def test_check_config_reports_rules_problems_with_lines(tmp_path: Path) -> None:
    config = write_config(tmp_path / "site", rules="rules.yaml")
    (config.parent / "rules.yaml").write_text(BROKEN, encoding="utf-8")
    result = mail2sms("check-config", "--config", str(config), cwd=config.parent)
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert any("rules.yaml:3:" in line and "bogus" in line for line in lines), lines
    assert any("rules.yaml:4:" in line and "ARRET" in line for line in lines), lines
    assert any("rules.yaml:7:" in line and "regex" in line for line in lines), lines
    assert any("rules.yaml:9:" in line and "nowhere" in line for line in lines), lines


def test_the_example_rules_pass(tmp_path: Path) -> None:
    example = Path(__file__).parents[2] / "rules.example.yaml"
    config = write_config(tmp_path / "site", rules=str(example))
    result = mail2sms("check-config", "--config", str(config), cwd=config.parent)
    assert result.returncode == 0, result.stderr


def test_check_config_refuses_plain_imap_to_another_host(tmp_path: Path) -> None:
    config = write_config(tmp_path / "site", imap={
        "enabled": True, "host": "mail.example.com", "ssl": False, "username": "",
        "ca_file": "/nonexistent/ca.pem"})
    result = mail2sms("check-config", "--config", str(config), cwd=config.parent)
    assert result.returncode == 2
    assert "imap.ssl: plain IMAP would send the password in clear" in result.stderr
    assert "imap.username:" in result.stderr
    assert "imap.ca_file: no such file" in result.stderr
