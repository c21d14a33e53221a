"""``/api/sends`` and ``/api/templates`` over HTTP against a running server; the console
gateway's outbox file shows what went out."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.servers.mail2sms_server import PASSWORD, Mail2SmsServer, base_config

pytestmark = pytest.mark.integration

ALICE = ("alice@example.com", PASSWORD)
BOB = ("bob@example.com", PASSWORD)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Mail2SmsServer]:
    config = base_config(tmp_path, credit={"price_per_segment": 0.05, "currency": "EUR"})
    with Mail2SmsServer(tmp_path, config) as running:
        yield running


def client(server: Mail2SmsServer, auth: tuple[str, str] | None = ALICE) -> httpx.Client:
    return httpx.Client(base_url=server.http_url, auth=auth, timeout=10)


def outbox(server: Mail2SmsServer) -> list[dict[str, Any]]:
    path = Path(server.config["gateway"]["outbox_file"])
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def wait(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def test_a_user_and_password_are_required(server: Mail2SmsServer) -> None:
    with client(server, auth=None) as anonymous:
        answer = anonymous.get("/api/sends")
        assert answer.status_code == 401
        assert answer.headers["www-authenticate"].startswith('Basic realm="mail2sms"')
        assert anonymous.post("/api/sends", json={"to": ["0612345678"], "text": "x"}
                              ).status_code == 401
        garbled = anonymous.get("/api/templates", headers={"Authorization": "Basic %%%"})
        assert garbled.status_code == 401 and "malformed" in garbled.json()["detail"]
    for auth in (("alice@example.com", "wrong"), ("mallory@example.com", PASSWORD)):
        with client(server, auth=auth) as wrong:
            answer = wrong.get("/api/sends")
            assert answer.status_code == 401
            assert answer.json()["detail"] == "wrong user or password"
    with client(server) as alice:
        assert alice.get("/api/sends").json() == {"sends": []}
        # a third failure (auth_max_failures: 3) stops this address for the window
        assert alice.get("/api/sends", auth=("alice@example.com", "again")).status_code == 401
        throttled = alice.get("/api/sends")
        assert throttled.status_code == 429
        assert int(throttled.headers["retry-after"]) > 0
    assert outbox(server) == []


def test_templates_create_replace_read_delete(server: Mail2SmsServer) -> None:
    with client(server) as alice:
        created = alice.put("/api/templates/Rappel", json={
            "text": "Bonjour {{ first_name | default('client') }}, RDV demain 9h.",
            "description": "RDV du lendemain"})
        assert created.status_code == 201
        assert created.json()["created_by"] == "alice@example.com"
        assert created.json()["fields"] == ["first_name"]

        replaced = alice.put("/api/templates/rappel", json={"text": "RDV demain 10h."})
        assert replaced.status_code == 200
        assert (replaced.json()["name"], replaced.json()["description"]) == (
            "Rappel", "RDV du lendemain")
        broken = alice.put("/api/templates/cassé", json={"text": "Bonjour\n{{ first_name }"})
        assert broken.status_code == 422 and "line 2" in broken.json()["detail"]
        extra = alice.put("/api/templates/x", json={"text": "ok", "colour": "red"})
        assert extra.status_code == 422 and "colour" in extra.json()["detail"]

        [row] = alice.get("/api/templates").json()["templates"]
        assert (row["name"], row["text"]) == ("Rappel", "RDV demain 10h.")
        assert alice.get("/api/templates/RAPPEL").json()["text"] == "RDV demain 10h."
        with client(server, auth=BOB) as bob:  # templates are shared by every user
            assert bob.get("/api/templates/rappel").status_code == 200

        assert alice.delete("/api/templates/Rappel").status_code == 204
        gone = alice.get("/api/templates/Rappel")
        assert gone.status_code == 404
        assert gone.json()["detail"] == ("unknown template 'Rappel': known templates: "
                                         "none is saved yet")
        assert alice.delete("/api/templates/Rappel").status_code == 404


def test_send_with_a_template(server: Mail2SmsServer) -> None:
    with client(server) as alice:
        alice.put("/api/templates/promo", json={
            "text": "Bonjour {{ first_name | default('client') }} : -20 % ce samedi."})
        answer = alice.post("/api/sends", json={"to": ["06 12 34 56 78", "0123456789"],
                                                "template": "PROMO"})
        assert answer.status_code == 201, answer.text
        result = answer.json()
        assert result["status"] in ("ready", "sending", "done")
        rows = {row["number"]: row for row in result["plan"]}
        assert set(rows["+33612345678"]) == {"number", "status", "reason", "encoding",
                                             "segments", "text"}
        assert rows["+33612345678"]["text"] == "Bonjour client : -20 % ce samedi."
        assert [r["status"] for r in result["plan"]].count("skipped") == 1  # the landline

        unknown = alice.post("/api/sends", json={"to": ["0612345678"], "template": "nope"})
        assert unknown.status_code == 422
        assert unknown.json()["status"] == "refused"
        assert "unknown template 'nope': known templates: promo" in unknown.json()["detail"]
        wait(lambda: len(outbox(server)) == 1, 10, "the SMS was not sent")
        sent = alice.get(f"/api/sends/{result['id']}").json()
        wait(lambda: alice.get(f"/api/sends/{result['id']}").json()["status"] == "done", 10,
             "never done")
    [sms] = outbox(server)
    assert (sms["to"], sms["text"]) == ("+33612345678", "Bonjour client : -20 % ce samedi.")
    assert sent["counts"]["skipped"] == 1 and sent["segments"] == 1


def test_a_dry_run_writes_nothing_and_a_bad_body_is_named(server: Mail2SmsServer) -> None:
    with client(server) as alice:
        answer = alice.post("/api/sends", json={
            "to": ["0612345678"], "text": "Soldes !", "marketing": True,
            "at": "2099-03-02T10:00", "dry_run": True})
        assert answer.status_code == 200, answer.text
        result = answer.json()
        assert (result["id"], result["status"]) == (None, "dry run")
        [row] = result["plan"]
        assert row["status"] == "deferred"
        assert row["not_before"] == "2099-03-02T09:00:00+00:00"  # 10:00 in Paris
        assert "STOP" not in row["text"]  # from the shortcode: no mention needed
        assert (result["segments"], result["cost"]) == (1, "0.05 EUR")  # known before

        for body, named in [
            ({"to": [], "text": "x"}, "to: List should have at least 1 item"),
            ({"to": ["0612345678"]}, "give 'text' (the SMS) or 'template'"),
            ({"to": ["0612345678"], "text": "x", "colour": 1}, "colour: Extra inputs"),
            ({"to": ["0612345678"], "text": "x", "at": "demain"}, "at: Input should be"),
            ({"to": "0612345678", "text": "x"}, "to: Input should be a valid list"),
        ]:
            bad = alice.post("/api/sends", json=body)
            assert bad.status_code == 422, body
            assert named in bad.json()["detail"], bad.json()
        assert alice.post("/api/sends", content=b"{not json").status_code == 422
        assert alice.get("/api/sends").json() == {"sends": []}
    time.sleep(0.5)
    assert outbox(server) == []


def test_another_users_send_is_not_found(server: Mail2SmsServer) -> None:
    with client(server) as alice, client(server, auth=BOB) as bob:
        rid = alice.post("/api/sends", json={"to": ["0612345678"], "text": "x",
                                             "at": "2099-01-01T09:00"}).json()["id"]
        for answer in (bob.get(f"/api/sends/{rid}"), bob.post(f"/api/sends/{rid}/cancel")):
            assert answer.status_code == 404
            assert answer.json()["detail"] == f"no send #{rid} of yours"
        assert bob.get("/api/sends").json() == {"sends": []}
        assert alice.get(f"/api/sends/{rid}").json()["status"] == "ready"
        assert alice.get("/api/sends/999999").status_code == 404


def test_draft_then_release(server: Mail2SmsServer) -> None:
    with client(server) as alice:
        answer = alice.post("/api/sends", json={"to": ["0612345678", "0751223344"],
                                                "text": "Nouvelle collection", "draft": True})
        assert answer.status_code == 201
        rid = answer.json()["id"]
        assert answer.json()["status"] == "draft"
        assert [s["id"] for s in alice.get("/api/sends?status=draft").json()["sends"]] == [rid]
        time.sleep(1.5)
        assert outbox(server) == []

        released = alice.post(f"/api/sends/{rid}/release")
        assert released.status_code == 200
        assert (released.json()["before"], released.json()["status"],
                released.json()["changed"]) == ("draft", "ready", 2)
        wait(lambda: len(outbox(server)) == 2, 10, "the released draft was not sent")
        again = alice.post(f"/api/sends/{rid}/release")
        assert again.status_code == 409
        assert again.json()["detail"].startswith(f"send #{rid} is ")
        assert again.json()["status"] in ("sending", "done")
        assert alice.get("/api/sends?status=bogus").status_code == 422
    assert sorted(sms["to"] for sms in outbox(server)) == ["+33612345678", "+33751223344"]


def test_pause_resume_cancel(tmp_path: Path) -> None:
    config = base_config(tmp_path, gateway={"rate_per_second": 20})
    numbers = [f"+3365{i:07d}" for i in range(40)]
    with Mail2SmsServer(tmp_path, config) as server, client(server) as alice:
        rid = alice.post("/api/sends", json={"to": numbers, "text": "Info"}).json()["id"]
        wait(lambda: len(outbox(server)) >= 5, 10, "the send did not start")
        paused = alice.post(f"/api/sends/{rid}/pause")
        assert paused.status_code == 200
        assert paused.json()["status"] == "paused"
        # messages the dispatcher had already taken finish their gateway call
        wait(lambda: "sending" not in alice.get(f"/api/sends/{rid}").json()["by_status"],
             10, "calls never ended")
        waiting = alice.get(f"/api/sends/{rid}").json()["counts"]["queued"]
        wait(lambda: len(outbox(server)) == 40 - waiting, 5,
             "the outbox file does not match the messages sent")
        time.sleep(1.5)
        assert len(outbox(server)) == 40 - waiting < 40, "messages went out while paused"

        resumed = alice.post(f"/api/sends/{rid}/resume")
        assert (resumed.status_code, resumed.json()["status"]) == (200, "sending")
        wait(lambda: len(outbox(server)) >= 40, 15, "not every message went out")
        wait(lambda: alice.get(f"/api/sends/{rid}").json()["status"] == "done", 10,
             "never done")
        late = alice.post(f"/api/sends/{rid}/cancel")
        assert late.status_code == 409
        assert late.json() == {"detail": f"send #{rid} is done: it cannot be cancelled "
                                         "(nothing is left to send)", "status": "done"}

        later = alice.post("/api/sends", json={"to": ["0612345678"], "text": "Rappel",
                                               "at": "2099-01-01T09:00"}).json()["id"]
        cancelled = alice.post(f"/api/sends/{later}/cancel")
        assert cancelled.status_code == 200
        assert (cancelled.json()["status"], cancelled.json()["changed"],
                cancelled.json()["taken"]) == ("cancelled", 1, 0)
        assert alice.post(f"/api/sends/{later}/resume").status_code == 409
        assert alice.post(f"/api/sends/{later}/frob").status_code == 404
        time.sleep(0.5)
    counts = Counter(sms["to"] for sms in outbox(server))
    assert counts == Counter(numbers)
