"""Privacy by design: consent and do-not-call, export (right of access), erasure, the audit trail."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select, update

from contactcentre.crm.consent import DialRefused, check_dial, consent_state
from contactcentre.crm.models import (
    Address,
    Agent,
    AuditLog,
    Base,
    Callback,
    CallbackStatus,
    Consent,
    ContactPoint,
    Customer,
    DoNotCall,
    Interaction,
    InteractionLeg,
    Queue,
    Role,
    ServiceTier,
    SurveyResponse,
    Ticket,
    TicketEvent,
    Transaction,
)
from contactcentre.crm.privacy import ErasureRefused, erase_customer, export_customer
from contactcentre.crm.store import create_engine, session_factory, upgrade
from tests.support import add_customer, api, stored_text

DAY = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


@dataclass
class Seeded:
    customer_id: int
    personal: list[str]  # every value that identifies the customer or records what they said


async def seed_everything(sessions, n: int, first: str, last: str, agent_id: int, queue_id: int) -> Seeded:
    """A customer with one row of every kind the store holds about customers."""
    phone, email = f"+44163296010{n}", f"{first.lower()}.{last.lower()}@example.org"
    personal = [first, last, phone, email, f"{n} Quillback Mews", f"Flat {n}b Upper Storey", f"Tarnbridge{n}",
                f"ZZ{n} 9QQ", f"AC-PRIV-{n}", f"{first} rang about the broken router {n}",
                f"recordings/{first}-{n}.wav", f"{first} wants a refund for order {n}",
                f"{first} said the engineer was late {n}", f"{first} was very polite {n}",
                f"call {first} back about the refund {n}"]
    (_, _, _, _, line1, line2, city, postcode, account, notes, recording, subject, ticket_note, comment,
     callback_note) = personal
    call_id = f"call-{n}"
    async with sessions() as session, session.begin():
        customer = Customer(account_number=account, first_name=first, last_name=last, tier=ServiceTier.REACTIVE,
                            created_at=DAY - timedelta(days=300), segment="consumer", lifetime_value=Decimal("120.50"))
        session.add(customer)
        await session.flush()
        session.add_all([
            ContactPoint(customer_id=customer.id, kind="phone", value=phone, is_primary=True, verified=True),
            ContactPoint(customer_id=customer.id, kind="email", value=email, is_primary=True),
            Address(customer_id=customer.id, line1=line1, line2=line2, city=city, postcode=postcode, country="GB"),
            Transaction(customer_id=customer.id, kind="order", reference=f"ORD-{n}", amount=Decimal("59.99"),
                        currency="GBP", occurred_at=DAY - timedelta(days=3),
                        items=[{"sku": "RT-1", "name": "Router", "quantity": 1, "price": "59.99"}]),
            Interaction(call_id=call_id, caller_number=phone, customer_id=customer.id, agent_id=agent_id,
                        queue_id=queue_id, arrived_at=DAY + timedelta(minutes=n), offered_at=DAY + timedelta(minutes=n),
                        answered_at=DAY + timedelta(minutes=n, seconds=20),
                        ended_at=DAY + timedelta(minutes=n + 5), disposition="resolved", notes=notes,
                        recording_ref=recording, timeline=[[0, "Newchannel", f"PJSIP/trunk-{phone}"]]),
            Interaction(call_id=f"{call_id}-abandoned", caller_number=phone, customer_id=customer.id,
                        queue_id=queue_id, arrived_at=DAY + timedelta(hours=2, minutes=n),
                        ended_at=DAY + timedelta(hours=2, minutes=n + 1), end_reason="abandoned"),
        ])
        await session.flush()
        session.add(InteractionLeg(call_id=call_id, agent_device="PJSIP/agent1", agent_id=agent_id,
                                   joined_at=DAY + timedelta(minutes=n, seconds=20), talk_seconds=280.0))
        ticket = Ticket(customer_id=customer.id, subject=subject, priority="high", owner_id=agent_id,
                        created_at=DAY, updated_at=DAY)
        session.add(ticket)
        await session.flush()
        session.add_all([
            TicketEvent(ticket_id=ticket.id, at=DAY, actor_id=agent_id, field="status", old_value=None,
                        new_value="open"),
            TicketEvent(ticket_id=ticket.id, at=DAY + timedelta(minutes=1), actor_id=agent_id, field="note",
                        new_value=ticket_note),
            SurveyResponse(customer_id=customer.id, call_id=call_id, question="csat", score=5, comment=comment,
                           answered_at=DAY + timedelta(minutes=n + 6)),
            Consent(customer_id=customer.id, purpose="survey", channel="phone", granted=True, at=DAY, source="ivr"),
            Callback(customer_id=customer.id, number=phone, due_at=DAY + timedelta(days=1), note=callback_note,
                     status=CallbackStatus.SCHEDULED, attempts=0, max_attempts=3, requested_by=agent_id,
                     created_at=DAY),
            AuditLog(at=DAY, actor_id=agent_id, action="view", entity="customer", entity_id=str(customer.id),
                     reason=f"screen pop for call {call_id}"),
        ])
    return Seeded(customer.id, personal)


@pytest.fixture
async def store(sessions):
    """Two customers with a full history each, served by one agent."""
    async with sessions() as session, session.begin():
        agent = Agent(username="alice", display_name="Alice Agent", password_hash="-", device="PJSIP/agent1")
        queue = Queue(name="support")
        session.add_all([agent, queue])
    one = await seed_everything(sessions, 1, "Ottoline", "Quarrington", agent.id, queue.id)
    two = await seed_everything(sessions, 2, "Benedikt", "Vasquez", agent.id, queue.id)
    return sessions, one, two


def found(personal: list[str], values: list[str]) -> set[str]:
    return {p for p in personal if any(p in v for v in values)}


async def day_figures(sessions) -> dict:
    """What the reports count: calls and answered calls per day, per agent and per queue, and dispositions."""
    async with sessions() as session:
        rows = (await session.execute(select(Interaction.arrived_at, Interaction.answered_at, Interaction.agent_id,
                                             Interaction.queue_id, Interaction.disposition,
                                             Interaction.customer_id))).all()
    figures = Counter()
    for r in rows:
        day = r.arrived_at.date().isoformat()
        figures[("calls", day, r.agent_id, r.queue_id)] += 1
        figures[("answered", day, r.agent_id, r.queue_id)] += r.answered_at is not None
        figures[("disposition", day, r.disposition)] += 1
        figures[("known caller", day)] += r.customer_id is not None
    return dict(figures)


async def snapshot(sessions) -> dict:
    async with sessions() as session:
        return {name: [tuple(r) for r in (await session.execute(select(table).order_by(*table.primary_key))).all()]
                for name, table in Base.metadata.tables.items()}


async def test_export_holds_every_record_of_the_customer_and_nothing_of_another(store):
    sessions, one, two = store
    bundle = await export_customer(sessions, one.customer_id, None)
    text = json.dumps(bundle)  # it is machine-readable as it stands
    assert bundle["customer"]["first_name"] == "Ottoline" and bundle["customer"]["lifetime_value"] == "120.50"
    assert {c["kind"]: c["value"] for c in bundle["contact_points"]} == {
        "phone": "+441632960101", "email": "ottoline.quarrington@example.org"}
    assert [a["line1"] for a in bundle["addresses"]] == ["1 Quillback Mews"]
    assert bundle["transactions"][0]["items"][0]["sku"] == "RT-1"
    assert sorted(i["call_id"] for i in bundle["interactions"]) == ["call-1", "call-1-abandoned"]
    assert [leg["agent_device"] for leg in bundle["interactions"][0]["legs"]] == ["PJSIP/agent1"]
    assert [e["field"] for e in bundle["tickets"][0]["history"]] == ["status", "note"]
    assert bundle["survey_responses"][0]["comment"] == "Ottoline was very polite 1"
    assert [(c["purpose"], c["granted"]) for c in bundle["consents"]] == [("survey", True)]
    assert [(c["number"], c["status"]) for c in bundle["callbacks"]] == [("+441632960101", "scheduled")]
    assert [a["action"] for a in bundle["audit"]] == ["view", "export"]
    assert found(one.personal, [text]) == set(one.personal)
    assert found(two.personal, [text]) == set()
    assert "call-2" not in text


async def test_export_is_itself_audited(store):
    sessions, one, _ = store
    await export_customer(sessions, one.customer_id, None)
    async with sessions() as session:
        actions = (await session.scalars(select(AuditLog.action).where(
            AuditLog.entity_id == str(one.customer_id)).order_by(AuditLog.at))).all()
    assert actions == ["view", "export"]


async def test_erasure_leaves_no_personal_value_anywhere_and_the_figures_unchanged(store):
    sessions, one, two = store
    assert found(one.personal, await stored_text(sessions)) == set(one.personal)  # the search does see them
    figures = await day_figures(sessions)
    await erase_customer(sessions, one.customer_id, None, "erasure request ER-1")
    stored = await stored_text(sessions)
    assert found(one.personal, stored) == set()
    assert found(two.personal, stored) == set(two.personal)
    assert await day_figures(sessions) == figures
    async with sessions() as session:
        customer = await session.get(Customer, one.customer_id)
        audit = (await session.execute(select(AuditLog.action, AuditLog.reason).where(
            AuditLog.entity_id == str(one.customer_id)).order_by(AuditLog.at))).all()
        score = await session.scalar(select(SurveyResponse.score).where(SurveyResponse.customer_id == one.customer_id))
    assert customer.erased_at is not None and customer.tier is ServiceTier.REACTIVE
    assert [tuple(a) for a in audit][-1] == ("erase", "erasure request ER-1")
    assert score == 5


async def test_erasure_under_a_legal_hold_is_refused_and_changes_nothing(store):
    sessions, one, _ = store
    async with sessions() as session, session.begin():
        await session.execute(update(Customer).where(Customer.id == one.customer_id).values(legal_hold=True))
    before = await snapshot(sessions)
    with pytest.raises(ErasureRefused, match="legal hold"):
        await erase_customer(sessions, one.customer_id, None, "erasure request ER-2")
    assert await snapshot(sessions) == before


async def test_no_consent_is_not_granted_and_the_latest_answer_decides(store):
    sessions, one, _ = store
    async with sessions() as session:
        assert await consent_state(session, one.customer_id, "survey", "phone")
        assert not await consent_state(session, one.customer_id, "marketing", "phone")
        assert not await consent_state(session, one.customer_id, "survey", "email")
    async with sessions() as session, session.begin():
        session.add(Consent(customer_id=one.customer_id, purpose="survey", channel="phone", granted=False,
                            at=DAY + timedelta(days=1), source="agent"))
    async with sessions() as session:
        assert not await consent_state(session, one.customer_id, "survey", "phone")


async def test_dialling_needs_consent_for_the_purpose(store):
    sessions, _, _ = store
    async with sessions() as session:
        await check_dial(session, "+441632960101", "survey")
        with pytest.raises(DialRefused, match="AC-PRIV-1 has not consented to marketing calls"):
            await check_dial(session, "+441632960101", "marketing")
        with pytest.raises(DialRefused, match="no customer holds this number"):
            await check_dial(session, "+441632960999", "callback")


async def test_do_not_call_blocks_dialling_even_with_consent(store):
    sessions, _, _ = store
    async with sessions() as session, session.begin():
        session.add(DoNotCall(number="+441632960101", added_at=DAY, reason="asked on the phone", source="agent"))
    async with sessions() as session:
        with pytest.raises(DialRefused) as refused:
            await check_dial(session, "+441632960101", "survey")
    assert refused.value.reason == "on the do-not-call list (asked on the phone)"
    assert str(refused.value) == "+441632960101 may not be dialled: on the do-not-call list (asked on the phone)"


def run_cli(*args: str, url: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "contactcentre", *args], capture_output=True, text=True,
                          timeout=120, check=False, env={**os.environ, "CC_DATABASE_URL": url})


async def test_privacy_commands_export_and_erase_by_account_number(tmp_path):
    url = f"sqlite+aiosqlite:///{tmp_path / 'cc.db'}"
    await upgrade(url)
    engine = create_engine(url)
    customer = await add_customer(session_factory(engine), "Ottoline", "Quarrington", "+441632960101",
                                  ServiceTier.BASIC, notes=("rang about the router",))
    await engine.dispose()
    out = tmp_path / "export.json"
    exported = run_cli("privacy", "export", customer.account_number, "--out", str(out), url=url)
    assert exported.returncode == 0, exported.stderr
    assert json.loads(out.read_text())["customer"]["last_name"] == "Quarrington"
    no_reason = run_cli("privacy", "erase", str(customer.id), url=url)
    assert no_reason.returncode == 2 and "--reason" in no_reason.stderr
    erased = run_cli("privacy", "erase", str(customer.id), "--reason", "request ER-3", url=url)
    assert erased.returncode == 0, erased.stderr
    again = json.loads(run_cli("privacy", "export", str(customer.id), url=url).stdout)
    assert again["customer"]["last_name"] == "" and again["interactions"][0]["notes"] is None
    unknown = run_cli("privacy", "export", "AC-NOBODY", url=url)
    assert unknown.returncode == 1 and "no customer AC-NOBODY" in unknown.stderr


# The admin API, over the running app.

@pytest.fixture
async def staffed(stack):
    await stack.add_agent("alice", "PJSIP/agent1")
    await stack.add_agent("sam", None, role=Role.SUPERVISOR)
    await stack.add_agent("ada", None, role=Role.ADMIN)
    customer = await add_customer(stack.services.sessions, "Ottoline", "Quarrington", "+441632960101",
                                  ServiceTier.BASIC, notes=("rang about the router",))
    return stack, customer.id


async def test_export_and_erase_are_for_admins_only(staffed):
    stack, customer_id = staffed
    for method, path in (("GET", f"/api/admin/customers/{customer_id}/export"),
                         ("POST", f"/api/admin/customers/{customer_id}/erase")):
        body = {"json": {"reason": "request ER-4"}} if method == "POST" else {}
        assert (await api(stack, method, path, **body))[0] == 401
        assert (await api(stack, method, path, "alice", **body))[0] == 403
        assert (await api(stack, method, path, "sam", **body))[0] == 403
    status, bundle = await api(stack, "GET", f"/api/admin/customers/{customer_id}/export", "ada")
    assert status == 200 and bundle["customer"]["first_name"] == "Ottoline"
    assert bundle["interactions"][0]["notes"] == "rang about the router"
    status, body = await api(stack, "GET", "/api/admin/customers/999999/export", "ada")
    assert (status, body["id"]) == (404, "no-such-customer")
    assert (await api(stack, "GET", "/api/admin/customers/99999999999999999999/export", "ada"))[0] == 404


async def test_erase_over_the_api_checks_its_body_and_the_legal_hold(staffed):
    stack, customer_id = staffed
    path = f"/api/admin/customers/{customer_id}/erase"
    assert await api(stack, "POST", path, "ada", json={}) == (
        400, {"error": "reason: required", "id": "bad-request"})
    status, body = await api(stack, "POST", path, "ada", json={"reason": 7})
    assert (status, body["error"]) == (400, "reason: expected a string, got int")
    assert (await api(stack, "POST", path, "ada", json={"reason": " "}))[1]["error"].startswith("reason:")
    assert (await api(stack, "POST", path, "ada", json=["reason"]))[1]["error"] == "body: expected a JSON object"
    assert (await api(stack, "POST", path, "ada", data="not json"))[1]["error"] == "body: expected a JSON object"
    async with stack.services.sessions() as session, session.begin():
        await session.execute(update(Customer).where(Customer.id == customer_id).values(legal_hold=True))
    status, body = await api(stack, "POST", path, "ada", json={"reason": "request ER-5"})
    assert (status, body["id"]) == (409, "legal-hold") and "legal hold" in body["error"]
    async with stack.services.sessions() as session, session.begin():
        await session.execute(update(Customer).where(Customer.id == customer_id).values(legal_hold=False))
    status, body = await api(stack, "POST", path, "ada", json={"reason": "request ER-5"})
    assert status == 200 and body["customer_id"] == customer_id
    status, bundle = await api(stack, "GET", f"/api/admin/customers/{customer_id}/export", "ada")
    assert bundle["customer"]["first_name"] == "erased" and bundle["contact_points"] == []


async def test_audit_trail_is_listed_in_pages_to_supervisors_and_admins(staffed):
    stack, customer_id = staffed
    for _ in range(3):
        await api(stack, "GET", f"/api/admin/customers/{customer_id}/export", "ada")
    path = f"/api/admin/audit?entity=customer&entity_id={customer_id}"
    assert (await api(stack, "GET", path))[0] == 401
    assert (await api(stack, "GET", path, "alice"))[0] == 403
    status, page = await api(stack, "GET", path + "&limit=2", "sam")
    assert status == 200 and (page["total"], len(page["entries"]), page["limit"]) == (3, 2, 2)
    assert {e["action"] for e in page["entries"]} == {"export"}
    status, rest = await api(stack, "GET", path + "&limit=2&offset=2", "ada")
    assert len(rest["entries"]) == 1 and rest["entries"][0]["id"] not in {e["id"] for e in page["entries"]}
    assert (await api(stack, "GET", "/api/admin/audit?entity_id=nobody", "ada"))[1]["entries"] == []
    for query, field in (("limit=0", "limit"), ("limit=100000", "limit"), ("offset=-1", "offset"),
                         ("limit=ten", "limit")):
        status, body = await api(stack, "GET", f"/api/admin/audit?{query}", "ada")
        assert status == 400 and body["error"].startswith(f"{field}:"), body


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE"])
async def test_audit_trail_cannot_be_changed_through_the_api(staffed, method):
    stack, _ = staffed
    assert (await api(stack, method, "/api/admin/audit", "ada", json={}))[0] == 405
