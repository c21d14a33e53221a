"""The contact directory: store queries on SQLite and PostgreSQL, the ``contacts`` and
``groups`` commands as real processes, and #Group sends (dry run, and real SMTP through
``mail2sms serve`` to the console gateway)."""

from __future__ import annotations

import csv
import json
import smtplib
import time
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlmodel import Session

from campaigns.contacts_import import ImportOptions, import_contacts
from store import contacts, contacts_bulk, queries
from store.db import Database, make_engine
from tests.integration.test_cli import mail2sms, write_config
from tests.integration.test_smtp_intake import sent_sms
from tests.servers.mail2sms_server import PASSWORD, Mail2SmsServer, base_config

pytestmark = pytest.mark.integration

ANN, BOB, CHLOE, DAN = "+33612345678", "+33612345679", "+33612345680", "+33612345681"


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    database = Database(db_url)
    yield database
    database.close()


# --- store, both backends ---------------------------------------------------------------


def test_contact_crud_and_search(db: Database) -> None:
    db.run_sync(lambda s: contacts.add_contact(
        s, ANN, {"first_name": "Ann", "email": "ann@example.com"}, {"ville": "Lyon"}))
    with pytest.raises(contacts.ContactError, match="already a contact"):
        db.run_sync(lambda s: contacts.add_contact(s, ANN, {}))
    db.run_sync(lambda s: contacts.edit_contact(
        s, ANN, {"last_name": "Lee", "email": ""}, {"ville": None, "code": "7"}))
    ann = db.run_sync(lambda s: contacts.get_contact(s, ANN))
    assert ann is not None
    assert (ann.first_name, ann.last_name, ann.email) == ("Ann", "Lee", None)
    assert contacts.custom_fields(ann) == {"code": "7"}
    db.run_sync(lambda s: contacts.add_contact(s, BOB, {"last_name": "O'Brien_%"}))

    def search(*texts: str) -> list[str]:
        return db.run_sync(lambda s: [c.number for c in contacts.search_contacts(s, texts)])

    assert search("LEE") == [ANN]
    assert search("345679") == [BOB]
    assert search('"code": "7"') == [ANN]
    assert search("n_%") == [BOB]  # LIKE wildcards are taken literally
    assert search("nobody") == []
    assert db.run_sync(lambda s: contacts.count_contacts(s)) == 2
    page = db.run_sync(lambda s: [c.number for c in contacts.list_contacts(s, offset=1,
                                                                            limit=1)])
    assert page == [BOB]
    assert db.run_sync(lambda s: contacts.remove_contact(s, ANN)) is True
    assert db.run_sync(lambda s: contacts.remove_contact(s, ANN)) is False


def test_groups_keep_their_contacts_and_ignore_case_and_accents(db: Database) -> None:
    db.run_sync(lambda s: contacts.create_group(s, "Équipe"))
    for bad in ("equipe", "ÉQUIPE", "two words", "#x"):
        with pytest.raises(contacts.ContactError):
            db.run_sync(lambda s, name=bad: contacts.create_group(s, name))
    assert db.run_sync(lambda s: contacts.add_members(s, "EQUIPE", [ANN, BOB])) == 2
    assert db.run_sync(lambda s: contacts.add_members(s, "equipe", [BOB, CHLOE])) == 1
    db.run_sync(lambda s: contacts.rename_group(s, "équipe", "Staff"))
    assert db.run_sync(contacts.list_groups) == [("Staff", 3)]
    assert db.run_sync(lambda s: contacts.group_members(s, "équipe")) is None
    assert db.run_sync(lambda s: contacts.remove_members(s, "staff", [BOB])) == 1
    numbers = db.run_sync(lambda s: [n for n, _ in contacts.group_members(s, "STAFF") or []])
    assert numbers == [ANN, CHLOE]
    assert db.run_sync(lambda s: contacts.remove_group(s, "Staff")) == 2
    assert db.run_sync(contacts.list_groups) == []
    assert db.run_sync(lambda s: contacts.count_contacts(s)) == 3
    with pytest.raises(contacts.UnknownGroup):
        db.run_sync(lambda s: contacts.list_contacts(s, group="Staff"))


def test_bulk_upsert_and_members_for_the_planner(db: Database) -> None:
    rows = [{"number": f"+336{n:08d}", "first_name": f"P{n}", "fields": {"n": str(n)}}
            for n in range(3000)]

    def load(s: Session, mode: str, data: list[dict]) -> contacts_bulk.UpsertCounts:
        return contacts_bulk.upsert_contacts(s, data, mode=mode,
                                        group_ids=contacts.ensure_groups(s, ["Big"]))

    assert db.run_sync(lambda s: load(s, "add", rows)) == contacts_bulk.UpsertCounts(added=3000)
    changed = [{"number": "+33600000001", "last_name": "New", "fields": {"x": "1"}},
               {"number": "+33600000002", "first_name": "P2"}, {"number": ANN}]
    assert db.run_sync(lambda s: load(s, "add", changed)) == contacts_bulk.UpsertCounts(
        added=1, unchanged=2)
    assert db.run_sync(lambda s: load(s, "update", changed)) == contacts_bulk.UpsertCounts(
        updated=1, unchanged=2)
    found = dict(db.run_sync(lambda s: contacts.group_members(s, "big")) or [])
    assert len(found) == 3001
    assert found["+33600000001"] == {"number": "+33600000001", "first_name": "P1",
                                     "last_name": "New", "n": "1", "x": "1"}
    assert found[ANN] == {"number": ANN}  # nothing known: absent, not empty


def test_import_on_both_backends(db: Database, tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    path.write_text("Prénom;Portable\n" + "".join(f"P{n};06 {n:08d}\n" for n in range(2500)),
                    encoding="utf-8")
    result = import_contacts(db.engine, path, ImportOptions(groups=["Imported"]))
    assert result.added == 2500
    assert db.run_sync(contacts.list_groups) == [("Imported", 2500)]


# --- the command line -------------------------------------------------------------------


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return write_config(tmp_path / "site")


def run(config: Path, *args: str) -> str:
    done = mail2sms(*args, "--config", str(config), cwd=config.parent)
    assert done.returncode == 0, done.stderr + done.stdout
    return done.stdout


def test_contacts_commands(config: Path) -> None:
    run(config, "contacts", "add", "06 12 34 56 78", "--first-name", "Ann", "--email",
        "ann@example.com", "--birthday", "24/11/1980", "--field", "ville=Lyon",
        "--group", "Staff")
    refused = mail2sms("contacts", "add", "0612345678", "--config", str(config),
                       cwd=config.parent)
    assert refused.returncode == 1 and "already a contact" in refused.stderr
    landline = mail2sms("contacts", "add", "01 42 68 53 00", "--config", str(config),
                        cwd=config.parent)
    assert landline.returncode == 2 and "landline" in landline.stderr
    run(config, "contacts", "add", "+33 6 12 34 56 79", "--last-name", "Bé")
    run(config, "contacts", "edit", "0612345679", "--first-name", "Bob", "--field", "code=7",
        "--group", "staff")
    rows = json.loads(run(config, "contacts", "list", "--json"))
    assert rows == [
        {"number": ANN, "first_name": "Ann", "last_name": None, "email": "ann@example.com",
         "birthday": "1980-11-24", "fields": {"ville": "Lyon"}, "groups": ["Staff"]},
        {"number": BOB, "first_name": "Bob", "last_name": "Bé", "email": None,
         "birthday": None, "fields": {"code": "7"}, "groups": ["Staff"]},
    ]
    assert run(config, "contacts", "search", "06 12 34 56 79").startswith(BOB)
    assert json.loads(run(config, "contacts", "search", "lyon", "--json"))[0]["number"] == ANN
    export = config.parent / "export.csv"
    run(config, "contacts", "export", str(export), "--group", "STAFF")
    with export.open(encoding="utf-8", newline="") as file:
        table = list(csv.reader(file))
    assert table[0] == ["number", "first_name", "last_name", "email", "birthday", "code",
                        "ville"]
    assert table[1] == [ANN, "Ann", "", "ann@example.com", "1980-11-24", "", "Lyon"]
    run(config, "contacts", "remove", "0612345678")
    assert json.loads(run(config, "contacts", "list", "--json", "--group", "staff"))[0][
        "number"] == BOB
    unknown = mail2sms("contacts", "list", "--group", "Nope", "--json", "--config", str(config),
                       cwd=config.parent)
    assert unknown.returncode == 1 and "no group called 'Nope'" in unknown.stderr
    assert unknown.stdout == ""


def test_contacts_import_command_and_export_round_trip(config: Path) -> None:
    source = config.parent / "clients.csv"
    source.write_text("Nom;Téléphone portable;Code client\nLee;06 12 34 56 78;A1\n"
                      "Fixe;01 42 68 53 00;B2\nLee2;+33612345678;C3\n", encoding="cp1252")
    out = run(config, "contacts", "import", str(source), "--group", "Clients", "--group",
              "VIP", "--rejects", str(config.parent / "bad.csv"))
    assert "3 rows: 1 added, 0 updated, 0 already there, 1 rejected, 1 duplicate(s)" in out
    assert "custom fields: code_client" in out and str(config.parent / "bad.csv") in out
    assert json.loads(run(config, "groups", "list", "--json")) == [
        {"name": "Clients", "members": 1}, {"name": "VIP", "members": 1}]
    override = config.parent / "o.csv"
    override.write_text("a,b\nAnn,0612345678\n", encoding="utf-8")
    out = run(config, "contacts", "import", str(override), "--mode", "update", "--column",
              "phone=2", "--column", "first_name=a")
    assert "1 updated" in out
    export = config.parent / "all.csv"
    run(config, "contacts", "export", str(export))
    again = write_config(config.parent / "other")
    run(again, "contacts", "import", str(export))
    assert run(again, "contacts", "list") == run(config, "contacts", "list").replace(
        "Clients,VIP", "-")
    bad = mail2sms("contacts", "import", str(override), "--column", "phone=Mobile",
                   "--config", str(config), cwd=config.parent)
    assert bad.returncode == 2 and "no such column" in bad.stderr


def test_groups_commands(config: Path) -> None:
    run(config, "groups", "create", "Staff")
    dup = mail2sms("groups", "create", "STAFF", "--config", str(config), cwd=config.parent)
    assert dup.returncode == 1 and "already exists" in dup.stderr
    assert "2 added" in run(config, "groups", "add", "staff", "0612345678", "06 12 34 56 79")
    assert "0 added, 1 already in it" in run(config, "groups", "add", "Staff", "0612345678")
    run(config, "groups", "rename", "Staff", "Équipe")
    assert run(config, "groups", "list") == "Équipe\t2\n"
    members = json.loads(run(config, "groups", "members", "equipe", "--json"))
    assert [m["number"] for m in members] == [ANN, BOB]
    assert "1 removed" in run(config, "groups", "drop", "Équipe", "0612345679")
    assert "1 member(s) kept" in run(config, "groups", "remove", "EQUIPE")
    assert run(config, "groups", "list") == ""
    assert len(json.loads(run(config, "contacts", "list", "--json"))) == 2
    missing = mail2sms("groups", "add", "Nope", "0612345678", "--config", str(config),
                       cwd=config.parent)
    assert missing.returncode == 1 and "no group called" in missing.stderr


# --- sends to a group -------------------------------------------------------------------


def staff(config: Path) -> None:
    """Three members: one without a first name, one opted out."""
    run(config, "contacts", "add", ANN, "--first-name", "Ann", "--field", "code=A1",
        "--group", "Staff")
    run(config, "contacts", "add", BOB, "--group", "Staff", "--field", "code=B2")
    run(config, "contacts", "add", CHLOE, "--first-name", "Chloé", "--field", "code=C3",
        "--group", "Staff")
    run(config, "optouts", "add", CHLOE)


def test_send_to_a_group_dry_run(config: Path) -> None:
    staff(config)
    out = run(config, "send", "--as", "alice@example.com", "--to", "#staff", "--to", DAN,
              "--text", "Bonjour {{ first_name | default('à tous') }}, code {{ code }}",
              "--dry-run", "--json")
    rows = {row["number"]: row for row in json.loads(out)}
    assert rows[ANN]["status"] == "queued" and rows[ANN]["text"] == "Bonjour Ann, code A1"
    assert rows[BOB]["text"] == "Bonjour à tous, code B2"
    assert (rows[CHLOE]["status"], rows[CHLOE]["reason"]) == ("skipped", "opted out")
    # DAN is no contact and has no code: skipped with the reason, as for any missing field
    assert rows[DAN]["status"] == "skipped" and "code" in rows[DAN]["reason"]
    unknown = run(config, "send", "--as", "alice@example.com", "--to", "#Nobody", "--to", DAN,
                  "--text", "Hi", "--dry-run")
    assert "unknown group #Nobody" in unknown


def test_group_in_an_email_subject_reaches_every_member(tmp_path: Path) -> None:
    config = base_config(tmp_path)
    engine = make_engine(config["database"]["url"])
    with Session(engine) as session:
        contacts_bulk.upsert_contacts(session, [
            {"number": ANN, "first_name": "Ann"}, {"number": BOB, "first_name": "Bob"},
            {"number": CHLOE, "first_name": "Chloé"}],
            group_ids=contacts.ensure_groups(session, ["Staff"]))
        queries.add_optout(session, CHLOE, "cli", None)
        session.commit()
    engine.dispose()
    message = EmailMessage()
    message["From"], message["To"] = "alice@example.com", "sms@sms.example.com"
    message["Subject"], message["Message-ID"] = "#STAFF", "<group-1@example.com>"
    message.set_content("Bonjour {{ first_name }}, réunion à 9h")
    with Mail2SmsServer(tmp_path, config) as server:
        with smtplib.SMTP("127.0.0.1", server.smtp_port, timeout=10) as client:
            client.login("alice@example.com", PASSWORD)
            assert client.send_message(message) == {}
        sent_sms(server, 2)
        time.sleep(0.5)  # anything more (the opted-out member) would be there by now
        sms = sent_sms(server, 2)
    assert sorted((s["to"], s["text"]) for s in sms) == [
        (ANN, "Bonjour Ann, réunion à 9h"), (BOB, "Bonjour Bob, réunion à 9h")]
