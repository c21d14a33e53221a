"""``mail2sms templates`` and sends from a saved template, as real processes: the CLI,
and an email with ``[template:NAME]`` over real SMTP to a running server."""

from __future__ import annotations

import json
import smtplib
from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlmodel import Session

from store import templates
from store.db import make_engine
from tests.integration.test_cli import mail2sms, write_config
from tests.integration.test_smtp_intake import sent_sms
from tests.servers.mail2sms_server import PASSWORD, Mail2SmsServer, base_config

pytestmark = pytest.mark.integration

RAPPEL = "Rappel : votre rendez-vous est demain à 9h."


def run(config: Path, *args: str) -> tuple[int, str, str]:
    done = mail2sms(*args, "--config", str(config), cwd=config.parent)
    return done.returncode, done.stdout, done.stderr


def test_add_list_show_edit_remove(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    code, out, err = run(config, "templates", "add", "Rappel", "--text", RAPPEL,
                         "--description", "RDV du lendemain", "--by", "alice")
    assert code == 0, err
    assert "Rappel: added" in out
    code, _, err = run(config, "templates", "add", "rappel", "--text", "autre")
    assert code == 1 and "already exists" in err

    code, out, err = run(config, "templates", "list", "--json")
    assert code == 0, err
    [row] = json.loads(out)
    assert (row["name"], row["text"], row["description"], row["created_by"]) == (
        "Rappel", RAPPEL, "RDV du lendemain", "alice")
    code, out, _ = run(config, "templates", "list")
    assert out.strip() == "Rappel\tRDV du lendemain"

    code, out, err = run(config, "templates", "show", "RAPPEL")
    assert code == 0, err
    assert "name: Rappel" in out and RAPPEL in out

    code, out, err = run(config, "templates", "edit", "rappel",
                         "--text", "Bonjour {{ first_name }}")
    assert code == 0, err
    code, out, _ = run(config, "templates", "show", "rappel")
    assert "fields: first_name" in out and "Bonjour {{ first_name }}" in out
    assert "description: RDV du lendemain" in out

    code, out, err = run(config, "templates", "remove", "Rappel")
    assert code == 0 and "removed" in out, err
    code, _, err = run(config, "templates", "show", "Rappel")
    assert code == 1 and "unknown template 'Rappel'" in err
    code, out, _ = run(config, "templates", "list", "--json")
    assert json.loads(out) == []


def test_a_syntax_error_is_refused_with_its_line(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    code, _, err = run(config, "templates", "add", "cassé",
                       "--text", "Bonjour\n{{ first_name }\nà demain")
    assert code == 2
    assert "line 2" in err
    code, out, _ = run(config, "templates", "list", "--json")
    assert json.loads(out) == []
    run(config, "templates", "add", "ok", "--text", "Bonjour")
    code, _, err = run(config, "templates", "edit", "ok", "--text", "{% if %}")
    assert code == 2 and "line 1" in err
    _, out, _ = run(config, "templates", "show", "ok")
    assert out.rstrip().endswith("Bonjour")


def test_send_with_a_template_dry_run(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    run(config, "templates", "add", "rappel", "--text", RAPPEL)
    code, out, err = run(config, "send", "--as", "alice@example.com", "--template", "Rappel",
                         "--to", "06 12 34 56 78", "--dry-run", "--json")
    assert code == 0, err
    rows = json.loads(out)
    assert [(r["number"], r["status"], r["text"]) for r in rows] == [
        ("+33612345678", "queued", RAPPEL)]


def test_send_with_a_template_and_a_text_or_an_unknown_name_is_refused(
        tmp_path: Path) -> None:
    config = write_config(tmp_path)
    run(config, "templates", "add", "rappel", "--text", RAPPEL)
    code, _, err = run(config, "send", "--as", "alice@example.com", "--template", "rappel",
                       "--text", "Bonjour", "--to", "0612345678", "--dry-run", "--json")
    assert code == 1
    assert "[template:rappel] and a body: use one or the other" in err
    code, _, err = run(config, "send", "--as", "alice@example.com", "--template", "nope",
                       "--to", "0612345678", "--dry-run", "--json")
    assert code == 1
    assert "unknown template 'nope': known templates: rappel" in err


def test_an_email_with_a_template_and_no_body_is_sent_with_its_text(tmp_path: Path) -> None:
    config = base_config(tmp_path)
    engine = make_engine(config["database"]["url"])
    with Session(engine) as session:
        templates.add(session, "Rappel", RAPPEL, created_by="alice@example.com")
        session.commit()
    engine.dispose()
    message = EmailMessage()
    message["From"], message["To"] = "alice@example.com", "sms@sms.example.com"
    message["Subject"] = "0612345678 [template:rappel]"
    message["Message-ID"] = "<template-1@example.com>"
    message.set_content("")
    with Mail2SmsServer(tmp_path, config) as server:
        with smtplib.SMTP("127.0.0.1", server.smtp_port, timeout=10) as client:
            client.login("alice@example.com", PASSWORD)
            assert client.send_message(message) == {}
        sms = sent_sms(server, 1)
    assert [(s["to"], s["text"]) for s in sms] == [("+33612345678", RAPPEL)]
