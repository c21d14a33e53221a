"""The ``mail2sms`` console script as an admin runs it: send (dry run and real),
check-config, hash-password. Every call is a real process with a config in tmp_path."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from argon2 import PasswordHasher
from sqlmodel import Session

from sms.config import ComplianceConfig
from sms.encoding import analyse
from sms.phones import normalise
from sms.sender import validate_sender
from sms.window import next_allowed
from store import queries
from store.db import make_engine
from tests.servers.mail2sms_server import password_hash

pytestmark = pytest.mark.integration

REPO = Path(__file__).parents[2]
EMAILS = REPO / "tests" / "corpus" / "emails"
HOSTILE = REPO / "tests" / "corpus" / "hostile"
CORPUS = sorted(EMAILS.glob("*.eml"))
HOSTILE_ERRORS = sorted(
    p for p in HOSTILE.glob("*.eml")
    if "error" in json.loads(p.with_suffix(".json").read_text(encoding="utf-8"))
)
TEST_NUMBER = "+33611223344"
SHORTCODE = "36105"
ROW_KEYS = {"number", "status", "reason", "encoding", "segments", "text"}
COMPLIANCE = ComplianceConfig()
TIMEOUT = 60


def _script() -> list[str]:
    """The installed console script beside this interpreter, else the module."""
    script = Path(sys.executable).parent / "mail2sms"
    return [str(script)] if script.exists() else [sys.executable, "-m", "mail2sms.cli"]


def mail2sms(*args: str, cwd: Path, stdin: str | None = None,
             env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items()
             if k not in ("MAIL2SMS_CONFIG", "FORCE_COLOR", "COLUMNS", "LINES")}
    clean.update({"NO_COLOR": "1", "PYTHONIOENCODING": "utf-8", **(env or {})})
    return subprocess.run(
        [*_script(), *args], cwd=cwd, input=stdin if stdin is not None else "",
        capture_output=True, text=True, encoding="utf-8", timeout=TIMEOUT, env=clean,
    )


def corpus_users() -> list[str]:
    return sorted({json.loads(p.with_suffix(".json").read_text(encoding="utf-8"))["user"]
                   for p in CORPUS})


def write_config(directory: Path, **overrides: Any) -> Path:
    """Every From address of the corpus is a user, plus alice@example.com."""
    directory.mkdir(parents=True, exist_ok=True)
    users = [{"email": "alice@example.com", "password_hash": password_hash(),
              "test_number": TEST_NUMBER, "daily_limit": 1000}]
    users += [{"email": user, "password_hash": password_hash(), "test_number": TEST_NUMBER}
              for user in corpus_users()]
    config: dict[str, Any] = {
        "database": {"url": f"sqlite:///{directory / 'mail2sms.db'}"},
        "smtp": {"domains": ["sms.example.com"]},
        "users": users,
        "gateway": {"driver": "console", "outbox_file": str(directory / "sent.jsonl"),
                    "shortcode": SHORTCODE},
        "rules": None,
    }
    config.update(overrides)
    path = directory / "config.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    return path


def db_url(config: Path) -> str:
    return yaml.safe_load(config.read_text(encoding="utf-8"))["database"]["url"]


@pytest.fixture
def store_session(tmp_path: Path) -> Iterator[Any]:
    """Open a session on a config's database, after the CLI has run."""
    engines = []

    def open_session(config: Path) -> Session:
        engine = make_engine(db_url(config))
        engines.append(engine)
        return Session(engine)

    yield open_session
    for engine in engines:
        engine.dispose()


@pytest.fixture(scope="module")
def dry_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    config = write_config(tmp_path_factory.mktemp("dry"))
    make_engine(db_url(config)).dispose()  # the schema exists before parallel runs
    return config


@dataclass
class Batch:
    runs: dict[Path, subprocess.CompletedProcess[str]]
    before: datetime
    after: datetime


def run_batch(config: Path, paths: list[Path], *extra: str) -> Batch:
    """``send --eml PATH --dry-run`` for every path, a few processes at a time."""
    def one(path: Path) -> subprocess.CompletedProcess[str]:
        return mail2sms("send", "--config", str(config), "--eml", str(path), "--dry-run",
                        *extra, cwd=config.parent)

    before = datetime.now(UTC)
    with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
        runs = dict(zip(paths, pool.map(one, paths), strict=True))
    return Batch(runs, before, datetime.now(UTC))


@pytest.fixture(scope="module")
def corpus_runs(dry_config: Path) -> Batch:
    return run_batch(dry_config, CORPUS, "--json")


@pytest.fixture(scope="module")
def hostile_runs(dry_config: Path) -> Batch:
    return run_batch(dry_config, HOSTILE_ERRORS)


def aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def marketing_times(start: datetime) -> datetime:
    return next_allowed(start, COMPLIANCE.marketing_window, timezone=COMPLIANCE.timezone,
                        country=COMPLIANCE.country).astimezone(UTC)


def allowed_not_before(category: str | None, at: datetime | None,
                       before: datetime, after: datetime) -> set[datetime | None]:
    """The not_before values (None: sent now) that are right for a run between
    ``before`` and ``after``: the CLI's clock cannot be set, so both ends are allowed."""
    options: set[datetime | None] = set()
    for now in (before, after):
        start = at if at is not None and at > now else now
        when: datetime | None = start if start is not now else None
        if category == "marketing":
            allowed = marketing_times(start)
            if allowed > start:
                when = allowed
        options.add(when.astimezone(UTC) if when else None)
    return options


# --- send --eml --dry-run --json over the client corpus ---------------------------------


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.stem)
def test_dry_run_json_of_every_corpus_email(
    path: Path, dry_config: Path, corpus_runs: Batch, store_session: Any
) -> None:
    case = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
    run, before, after = corpus_runs.runs[path], corpus_runs.before, corpus_runs.after
    rows = json.loads(run.stdout)
    assert isinstance(rows, list)

    raws = [TEST_NUMBER] if case["test"] else case["recipients"]
    expected_numbers: list[str] = []
    for raw in raws:
        number = normalise(raw, "FR").e164 or raw
        if number not in expected_numbers:
            expected_numbers.append(number)
    sender = case["sender"] or SHORTCODE
    if validate_sender(sender) or not expected_numbers:
        # groups are unknown in an empty database; a bad sender ID refuses everything
        assert rows == []
        assert run.returncode == 1
        reason = repr(sender) if validate_sender(sender) else "no recipient"
        assert "refused" in run.stderr and reason in run.stderr, run.stderr
    else:
        assert run.returncode == 0, run.stderr
        assert [row["number"] for row in rows] == expected_numbers
        at = datetime.fromisoformat(case["at"]) if case["at"] else None
        timing = allowed_not_before(case["category"], at, before, after)
        for row in rows:
            phone = normalise(row["number"], "FR")
            info = analyse(row["text"])
            assert row["text"] == case["text"]
            assert (row["encoding"], row["segments"]) == (info.encoding, info.segments)
            if "{{" in case["text"]:
                assert row["status"] == "skipped"
                assert "first_name" in row["reason"]
            elif phone.reason:
                assert row["status"] == "skipped"
                assert row["reason"] == phone.reason
            else:
                assert row["status"] in ("queued", "deferred")
                assert row["reason"] is None
                not_before = datetime.fromisoformat(row["not_before"]) if (
                    row["status"] == "deferred") else None
                assert not_before in timing
            if row["status"] == "deferred":
                assert set(row) == ROW_KEYS | {"not_before"}
                assert datetime.fromisoformat(row["not_before"]).utcoffset() is not None
            else:
                assert set(row) == ROW_KEYS

    # a dry run writes nothing
    with store_session(dry_config) as session:
        assert queries.status_counts(session) == {}
        assert queries.get_request(session, 1) is None


def test_corpus_covers_every_client_case() -> None:
    assert len(CORPUS) >= 18


# --- send --to ----------------------------------------------------------------------------


def test_dry_run_shows_a_table_per_recipient(tmp_path: Path, store_session: Any) -> None:
    config = write_config(tmp_path)
    run = mail2sms("send", "--config", str(config), "--as", "alice@example.com",
                   "--to", "06 12 34 56 78", "--to", "12", "--text", "Réunion à 9h",
                   "--dry-run", cwd=tmp_path, env={"COLUMNS": "160"})
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    header = next(line for line in lines if "number" in line)
    for column in ("number", "status", "reason", "encoding", "segments", "text"):
        assert column in header
    queued = next(line for line in lines if "+33612345678" in line)
    assert re.search(r"\bqueued\b.*\bgsm7\b.*\b1\b.*Réunion à 9h", queued), queued
    invalid = next(line for line in lines if re.search(r"[│|]\s*12\s*[│|]", line))
    assert "skipped" in invalid and "invalid number" in invalid
    with store_session(config) as session:
        assert queries.status_counts(session) == {}


def test_dry_run_shows_the_total_segments_and_cost_before_sending(
    tmp_path: Path, store_session: Any
) -> None:
    config = write_config(tmp_path, credit={"price_per_segment": 0.045, "currency": "EUR"})
    long_text = "Rappel : " + "la réunion de demain est déplacée en salle B. " * 4  # 2 parts
    run = mail2sms("send", "--config", str(config), "--as", "alice@example.com",
                   "--to", "06 12 34 56 78", "--to", "06 98 76 54 32", "--to", "12",
                   "--text", long_text, "--dry-run", cwd=tmp_path, env={"COLUMNS": "200"})
    assert run.returncode == 0, run.stderr
    # two valid numbers of 2 GSM-7 parts each (the invalid one costs nothing)
    assert "total: 2 SMS to send, 4 segment(s), cost 0.18 EUR (2 queued, 1 skipped)" in run.stdout
    with store_session(config) as session:
        assert queries.status_counts(session) == {}


def test_a_large_send_table_stops_at_200_rows_unless_all(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    numbers = [f"+3375{n:07d}" for n in range(250)]
    args = ["send", "--config", str(config), "--as", "alice@example.com", "--text", "Bonjour",
            "--dry-run"]
    for number in numbers:
        args += ["--to", number]
    run = mail2sms(*args, cwd=tmp_path, env={"COLUMNS": "200"})
    assert run.returncode == 0, run.stderr
    assert numbers[199] in run.stdout and numbers[200] not in run.stdout
    assert "… 50 more row(s): --all shows every one, --json prints them all" in run.stdout
    assert "total: 250 SMS to send, 250 segment(s) (250 queued)" in run.stdout
    everything = mail2sms(*args, "--all", cwd=tmp_path, env={"COLUMNS": "200"})
    assert all(number in everything.stdout for number in numbers)
    assert "more row(s)" not in everything.stdout


def test_dry_run_without_a_price_shows_the_segments_only(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    run = mail2sms("send", "--config", str(config), "--as", "alice@example.com",
                   "--to", "0612345678", "--text", "Bonjour", "--dry-run", cwd=tmp_path,
                   env={"COLUMNS": "200"})
    assert run.returncode == 0, run.stderr
    assert "total: 1 SMS to send, 1 segment(s)" in run.stdout
    assert "cost" not in run.stdout


def test_dry_run_table_shows_the_text_exactly(tmp_path: Path) -> None:
    """Square brackets are common in SMS texts; the table must not eat them."""
    config = write_config(tmp_path)
    text = "Code [promo] valable [b]jusqu'à[/b] lundi"
    run = mail2sms("send", "--config", str(config), "--as", "alice@example.com",
                   "--to", "0612345678", "--text", text, "--dry-run", cwd=tmp_path,
                   env={"COLUMNS": "200"})
    assert run.returncode == 0, run.stderr
    assert text in run.stdout


def test_send_queues_a_message_row(tmp_path: Path, store_session: Any) -> None:
    config = write_config(tmp_path)
    run = mail2sms("send", "--config", str(config), "--as", "alice@example.com",
                   "--to", "06 12 34 56 78", "--text", "Le serveur est de nouveau en ligne.",
                   "--json", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    rows = json.loads(run.stdout)
    assert [(r["number"], r["status"]) for r in rows] == [("+33612345678", "queued")]
    with store_session(config) as session:
        request = queries.get_request(session, 1)
        assert request is not None
        assert (request.user, request.source, request.status) == (
            "alice@example.com", "cli", "accepted")
        messages = queries.messages_of_request(session, 1)
        assert [(m.to, m.status, m.text, m.sender) for m in messages] == [
            ("+33612345678", "queued", "Le serveur est de nouveau en ligne.", SHORTCODE)]


def test_send_at_a_future_time_is_deferred(tmp_path: Path, store_session: Any) -> None:
    config = write_config(tmp_path)
    run = mail2sms("send", "--config", str(config), "--as", "alice@example.com",
                   "--to", "+33 6 12 34 56 78", "--text", "Rappel : rendez-vous lundi",
                   "--at", "2030-01-07 10:00", "--json", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    (row,) = json.loads(run.stdout)
    assert row["status"] == "deferred"
    # 10:00 in Paris in winter
    assert datetime.fromisoformat(row["not_before"]) == datetime(2030, 1, 7, 9, 0, tzinfo=UTC)
    with store_session(config) as session:
        (message,) = queries.messages_of_request(session, 1)
        assert message.status == "deferred"
        assert message.not_before is not None
        assert aware(message.not_before) == datetime(2030, 1, 7, 9, 0, tzinfo=UTC)


def test_send_at_in_the_past_goes_now_and_says_so(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    run = mail2sms("send", "--config", str(config), "--as", "alice@example.com",
                   "--to", "0612345678", "--text", "Bonjour", "--at", "2020-01-06 10:00",
                   "--dry-run", cwd=tmp_path, env={"COLUMNS": "160"})
    assert run.returncode == 0, run.stderr
    assert "queued" in run.stdout
    assert "[at:2020-01-06 10:00 CET] is in the past: sent now" in run.stdout


def test_send_rejects_an_unreadable_at(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    run = mail2sms("send", "--config", str(config), "--as", "alice@example.com",
                   "--to", "0612345678", "--text", "Bonjour", "--at", "demain 9h",
                   "--dry-run", cwd=tmp_path)
    assert run.returncode == 2
    assert "'demain 9h' is not a date" in run.stderr


def test_marketing_from_a_custom_sender_follows_the_window_and_carries_stop(
    tmp_path: Path,
) -> None:
    config = write_config(tmp_path)
    before = datetime.now(UTC)
    run = mail2sms("send", "--config", str(config), "--as", "alice@example.com",
                   "--to", "0612345678", "--text", "-20% sur tout le magasin demain",
                   "--marketing", "--from", "ACME", "--dry-run", "--json", cwd=tmp_path)
    after = datetime.now(UTC)
    assert run.returncode == 0, run.stderr
    (row,) = json.loads(run.stdout)
    assert row["text"] == "-20% sur tout le magasin demain\nSTOP au 36105"
    not_before = datetime.fromisoformat(row["not_before"]) if "not_before" in row else None
    assert row["status"] == ("deferred" if not_before else "queued")
    assert not_before in allowed_not_before("marketing", None, before, after)


def test_send_test_goes_to_the_users_test_number(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    run = mail2sms("send", "--config", str(config), "--as", "alice@example.com",
                   "--to", "0698765432", "--text", "Essai", "--test", "--dry-run", "--json",
                   cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert [row["number"] for row in json.loads(run.stdout)] == [TEST_NUMBER]


def test_send_test_without_a_test_number_is_refused_with_the_reason(tmp_path: Path) -> None:
    config = write_config(tmp_path, users=[
        {"email": "bob@example.com", "password_hash": password_hash()}])
    for extra in ([], ["--json"]):
        run = mail2sms("send", "--config", str(config), "--to", "0698765432",
                       "--text", "Essai", "--test", "--dry-run", *extra, cwd=tmp_path)
        assert run.returncode == 1
        shown = run.stdout + run.stderr
        assert "[test] needs a test number: none is set for you in the config" in shown


def test_send_as_an_unknown_user_is_refused(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    run = mail2sms("send", "--config", str(config), "--as", "mallory@example.net",
                   "--to", "0612345678", "--text", "Bonjour", "--dry-run", cwd=tmp_path)
    assert run.returncode == 1
    assert "mallory@example.net is not a user in the config" in run.stderr


@pytest.mark.parametrize("path", HOSTILE_ERRORS, ids=lambda p: p.stem)
def test_hostile_email_exits_non_zero_with_the_precise_reason(
    path: Path, hostile_runs: Batch
) -> None:
    expected = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))["error"]
    run = hostile_runs.runs[path]
    assert run.returncode != 0
    assert expected["contains"] in run.stderr, run.stderr
    assert run.stdout == ""


# --- check-config ---------------------------------------------------------------------


def test_the_example_config_passes() -> None:
    run = mail2sms("check-config", "--config", str(REPO / "config.example.yaml"), cwd=REPO)
    assert run.returncode == 0, run.stderr
    assert "OK" in run.stdout
    assert run.stderr == ""


def good_config() -> str:
    return f"""\
database:
  url: "sqlite:///mail2sms.db"
smtp:
  listen: "127.0.0.1:2525"
  domains: [sms.example.com]
  require_tls: false
users:
  - email: alice@example.com
    password_hash: "{password_hash()}"
    test_number: "+33612345678"
  - email: bob@example.com
    password_hash: "{password_hash()}"
http:
  listen: "127.0.0.1:8080"
  webhook_token: "a-long-secret"
gateway:
  driver: console
  shortcode: "36105"
  rate_per_second: 50
rules: null
"""


def line_of(text: str, fragment: str, nth: int = 1) -> int:
    """1-based line number of the ``nth`` line containing ``fragment``."""
    found = [i for i, line in enumerate(text.splitlines(), 1) if fragment in line]
    assert len(found) >= nth, f"{fragment!r} not in the test config"
    return found[nth - 1]


def test_a_good_config_passes(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(good_config(), encoding="utf-8")
    run = mail2sms("check-config", "--config", str(path), cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert f"{path}: OK (2 user(s), gateway console" in " ".join(run.stdout.split())


# (name, edit of the good config, the fragment whose line is reported, nth, key, message)
BROKEN = [
    ("unknown-key", ("  require_tls: false\n", "  require_tls: false\n  colour: blue\n"),
     "colour: blue", 1, "smtp.colour", "unknown key"),
    ("unknown-top-level-key", ("rules: null\n", "rules: null\nlogging: {level: debug}\n"),
     "logging:", 1, "logging", "unknown key"),
    ("unknown-user-key", ('    test_number: "+33612345678"\n',
                          '    test_number: "+33612345678"\n    nickname: Al\n'),
     "nickname", 1, "users.0.nickname", "unknown key"),
    ("wrong-type", ("rate_per_second: 50", "rate_per_second: fast"),
     "rate_per_second", 1, "gateway.rate_per_second", "valid number"),
    # "{h}" is the test users' argon2 hash; only the first user's is replaced
    ("non-argon2-hash", ("{h}", "$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi"),
     "$2b$12$", 1, "users.0.password_hash", "argon2"),
    ("require-tls-without-certificate", ("require_tls: false", "require_tls: true"),
     "require_tls", 1, "smtp.require_tls", "tls_cert"),
    ("duplicate-user", ("  - email: bob@example.com", "  - email: Alice@Example.com"),
     "email: Alice@Example.com", 1, "users.1.email", "duplicate user alice@example.com"),
    ("invalid-test-number", ('test_number: "+33612345678"', 'test_number: "12345"'),
     "test_number", 1, "users.0.test_number", "invalid number"),
    ("landline-test-number", ('test_number: "+33612345678"', 'test_number: "01 42 68 53 00"'),
     "test_number", 1, "users.0.test_number", "landline"),
    ("invalid-shortcode", ('shortcode: "36105"', 'shortcode: "12"'),
     "shortcode", 1, "gateway.shortcode", "'12'"),
    ("invalid-alphanumeric-shortcode", ('shortcode: "36105"', 'shortcode: "MY-SHOP"'),
     "shortcode", 1, "gateway.shortcode", "'MY-SHOP'"),
    ("bad-listen", ('listen: "127.0.0.1:8080"', 'listen: "127.0.0.1"'),
     'listen: "127.0.0.1"', 1, "http.listen", "host:port"),
]


@pytest.mark.parametrize(("old_new", "fragment", "nth", "key", "message"),
                         [case[1:] for case in BROKEN], ids=[case[0] for case in BROKEN])
def test_a_broken_config_gives_file_line_key_message(
    tmp_path: Path, old_new: tuple[str, str], fragment: str, nth: int, key: str, message: str
) -> None:
    good = good_config()
    old, new = old_new
    old = old.replace("{h}", password_hash())
    assert old in good
    text = good.replace(old, new, 1)
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    run = mail2sms("check-config", "--config", str(path), cwd=tmp_path)
    assert run.returncode == 2, run.stdout
    line = line_of(text, fragment, nth)
    pattern = rf"{re.escape(str(path))}:{line}: {re.escape(key)}: .*{re.escape(message)}"
    assert re.search(pattern, run.stderr), run.stderr


def test_every_schema_problem_is_reported_at_once(tmp_path: Path) -> None:
    text = (good_config().replace("rate_per_second: 50", "rate_per_second: fast")
            .replace("  require_tls: false\n", "  require_tls: false\n  colour: blue\n"))
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    run = mail2sms("check-config", "--config", str(path), cwd=tmp_path)
    assert run.returncode == 2
    assert f"{path}:{line_of(text, 'colour')}: smtp.colour: unknown key" in run.stderr
    assert f"{path}:{line_of(text, 'rate_per_second')}: gateway.rate_per_second:" in run.stderr


@pytest.mark.parametrize(("old", "new", "fragment", "message"), [
    ('  listen: "127.0.0.1:2525"', "  listen: 127.0.0.1: 2525", "127.0.0.1: 2525",
     "mapping values are not allowed"),
    ("  driver: console", "\tdriver: console", "driver: console", "found character '\\t'"),
], ids=["mapping-in-value", "tab"])
def test_a_yaml_syntax_error_gives_its_line(
    tmp_path: Path, old: str, new: str, fragment: str, message: str
) -> None:
    text = good_config().replace(old, new, 1)
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    run = mail2sms("check-config", "--config", str(path), cwd=tmp_path)
    assert run.returncode == 2
    line = line_of(text, fragment)
    assert re.search(rf"{re.escape(str(path))}:{line}: YAML syntax: .*{re.escape(message)}",
                     run.stderr), run.stderr


def test_a_missing_config_file_is_reported(tmp_path: Path) -> None:
    run = mail2sms("check-config", "--config", str(tmp_path / "nope.yaml"), cwd=tmp_path)
    assert run.returncode == 2
    assert f"{tmp_path / 'nope.yaml'}: cannot read" in run.stderr


# --- hash-password ----------------------------------------------------------------------


def test_hash_password_from_the_option(tmp_path: Path) -> None:
    run = mail2sms("hash-password", "--password", "correct horse", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    hashed = run.stdout.strip()
    assert hashed.startswith("$argon2id$")
    assert PasswordHasher().verify(hashed, "correct horse")


def test_hash_password_from_stdin(tmp_path: Path) -> None:
    run = mail2sms("hash-password", cwd=tmp_path, stdin="mot de passe à rallonge\n")
    assert run.returncode == 0, run.stderr
    hashed = run.stdout.strip()
    assert hashed.startswith("$argon2id$")
    assert PasswordHasher().verify(hashed, "mot de passe à rallonge")


def test_hash_password_refuses_an_empty_password(tmp_path: Path) -> None:
    run = mail2sms("hash-password", cwd=tmp_path, stdin="\n")
    assert run.returncode == 1
    assert "empty password" in run.stderr
    assert run.stdout == ""


def test_a_hashed_password_is_accepted_by_check_config(tmp_path: Path) -> None:
    hashed = mail2sms("hash-password", "--password", "x", cwd=tmp_path).stdout.strip()
    text = good_config().replace(password_hash(), hashed)
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    assert mail2sms("check-config", "--config", str(path), cwd=tmp_path).returncode == 0
