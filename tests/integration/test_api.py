"""The REST API over the customer store, on SQLite and PostgreSQL: bodies, filters, paging, roles, audit."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from ruamel.yaml import YAML
from sqlalchemy import func, select, update

from contactcentre.crm.consent import consent_state
from contactcentre.crm.models import (
    AuditLog,
    Base,
    Customer,
    Interaction,
    InteractionLeg,
    Queue,
    Role,
    SurveyResponse,
    Transaction,
)
from tests.support import api, start_stack

SPEC = YAML(typ="safe").load(Path(__file__).resolve().parents[2] / "contactcentre" / "web" / "openapi.yaml")
DAY = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


@pytest.fixture
async def floor(aiohttp_server, database_url):
    """The running server on each database, with two agents, a supervisor and an admin."""
    stack = await start_stack(aiohttp_server, database_url)
    stack.ids = {}
    for username, device, role in (("alice", "PJSIP/agent1", Role.AGENT), ("bob", "PJSIP/agent2", Role.AGENT),
                                   ("sam", None, Role.SUPERVISOR), ("ada", None, Role.ADMIN)):
        stack.ids[username] = (await stack.add_agent(username, device, role)).id
    yield stack
    await stack.close_consoles()


async def audit_rows(stack, **where) -> list[AuditLog]:
    async with stack.services.sessions() as session:
        return list((await session.scalars(select(AuditLog).filter_by(**where).order_by(AuditLog.id))).all())


async def new_customer(stack, account: str, first: str, last: str, *points: dict, **fields) -> dict:
    status, body = await api(stack, "POST", "/api/customers", "sam", json={
        "account_number": account, "first_name": first, "last_name": last, "contact_points": list(points), **fields})
    assert status == 201, body
    return body


def phone(value: str, **more) -> dict:
    return {"kind": "phone", "value": value, **more}


def email(value: str, **more) -> dict:
    return {"kind": "email", "value": value, **more}


# -- customers and contact points ---------------------------------------------------------------------------------

async def test_a_customer_is_created_with_phones_in_e164_and_one_primary_of_each_kind(floor):
    body = await new_customer(floor, "AC-1", "Ottoline", "Quarrington", phone("01632 960101"),
                              phone("+44 (1632) 960-102", primary=True, verified=True), email("Otto@Example.ORG"),
                              tier="proactive", segment="consumer", preferred_language="pt-BR",
                              customer_since="2024-03-01")
    assert (body["tier"], body["segment"], body["preferred_language"]) == ("proactive", "consumer", "pt-BR")
    assert body["created_at"] == "2024-03-01T00:00:00+00:00" and body["erased_at"] is None
    assert [(p["kind"], p["value"], p["is_primary"], p["verified"]) for p in body["contact_points"]] == [
        ("email", "otto@example.org", True, False),
        ("phone", "+441632960102", True, True), ("phone", "+441632960101", False, False)]
    status, opened = await api(floor, "GET", f"/api/customers/{body['id']}", "alice")
    assert status == 200 and opened == body


BAD_CUSTOMERS = [
    ({}, "account_number: required"),
    ({"account_number": 7}, "account_number: expected a string, got int"),
    ({"account_number": "A" * 33}, "account_number: expected 1 to 32 characters"),
    ({"account_number": "AC-9", "first_name": "  "}, "first_name: expected 1 to 100 characters"),
    ({"account_number": "AC-9", "first_name": "Jo", "last_name": "Doe", "tier": "gold"},
     "tier: expected one of basic, reactive, proactive, got 'gold'"),
    ({"account_number": "AC-9", "first_name": "Jo", "last_name": "Doe", "nickname": "J"},
     "nickname: unknown field"),
    ({"account_number": "AC-9", "first_name": "Jo", "last_name": "Doe", "preferred_language": "english"},
     "preferred_language: 'english' is not a language tag such as en or pt-BR"),
    ({"account_number": "AC-9", "first_name": "Jo", "last_name": "Doe", "customer_since": "2999-01-01"},
     "customer_since: 2999-01-01 is in the future"),
    ({"account_number": "AC-9", "first_name": "Jo", "last_name": "Doe"}, "contact_points: required"),
    ({"account_number": "AC-9", "first_name": "Jo", "last_name": "Doe", "contact_points": []},
     "contact_points: a customer needs at least one phone number or an e-mail address"),
    ({"account_number": "AC-9", "first_name": "Jo", "last_name": "Doe", "contact_points": ["+441632960101"]},
     "contact_points[0]: expected an object, got str"),
    ({"account_number": "AC-9", "first_name": "Jo", "last_name": "Doe", "contact_points": [phone("12")]},
     "contact_points[0].value: '12' is not a possible phone number"),
    ({"account_number": "AC-9", "first_name": "Jo", "last_name": "Doe", "contact_points": [{"kind": "fax"}]},
     "contact_points[0].kind: expected one of phone, email, got 'fax'"),
    ({"account_number": "AC-9", "first_name": "Jo", "last_name": "Doe",
      "contact_points": [phone("+441632960101"), phone("01632 960101")]},
     "contact_points[1].value: +441632960101 is given twice"),
    ({"account_number": "AC-9", "first_name": "Jo\x00", "last_name": "Doe", "contact_points": [email("j@x.org")]},
     "first_name: contains a NUL or an unpaired surrogate, which cannot be stored"),
]


async def refusals(stack, method: str, path: str, user: str, cases: list[tuple[object, str]], **kwargs) -> list:
    """The cases whose answer was not a 400 starting with the expected error: (case, status, error)."""
    wrong = []
    for case, error in cases:
        status, answer = await api(stack, method, path(case) if callable(path) else path, user,
                                   **({"json": case} if method != "GET" else {}), **kwargs)
        if status != 400 or answer["id"] != "bad-request" or not answer["error"].startswith(error):
            wrong.append((case, status, answer))
    return wrong


async def test_a_bad_customer_body_is_refused_naming_the_field_and_stores_nothing(floor):
    assert await refusals(floor, "POST", "/api/customers", "sam", BAD_CUSTOMERS) == []
    async with floor.services.sessions() as session:
        assert await session.scalar(select(func.count(Customer.id))) == 0


async def test_bodies_that_are_not_json_objects_are_refused(floor):
    nested = "[" * 30_000 + "]" * 30_000  # deeper than Python's parser recurses
    for kwargs in ({"data": "not json"}, {"json": ["a list"]}, {"data": b"\xff\xfe"}, {"data": nested}):
        status, answer = await api(floor, "POST", "/api/customers", "sam", **kwargs)
        assert (status, answer["error"]) == (400, "body: expected a JSON object")


async def test_a_taken_account_number_or_contact_point_is_a_conflict_naming_the_owner(floor):
    first = await new_customer(floor, "AC-1", "Jo", "Doe", phone("+441632960101"))
    status, answer = await api(floor, "POST", "/api/customers", "sam", json={
        "account_number": "AC-1", "first_name": "Al", "last_name": "Roe", "contact_points": [email("a@x.org")]})
    assert (status, answer["id"]) == (409, "account-number-taken")
    status, answer = await api(floor, "POST", "/api/customers", "sam", json={
        "account_number": "AC-2", "first_name": "Al", "last_name": "Roe", "contact_points": [phone("01632 960101")]})
    assert (status, answer["id"]) == (409, "contact-point-taken")
    assert answer["error"] == f"phone +441632960101 already belongs to customer {first['id']}"


async def test_making_a_contact_point_primary_demotes_the_old_one_and_a_primary_is_never_unset(floor):
    customer = await new_customer(floor, "AC-1", "Jo", "Doe", phone("+441632960101"))
    path = f"/api/customers/{customer['id']}/contact-points"
    status, second = await api(floor, "POST", path, "sam", json=phone("01632 960102"))
    assert status == 201 and (second["value"], second["is_primary"]) == ("+441632960102", False)
    status, mail = await api(floor, "POST", path, "sam", json=email("Jo@X.org"))
    assert (mail["value"], mail["is_primary"]) == ("jo@x.org", True)  # the first e-mail is the primary one
    status, third = await api(floor, "POST", path, "sam", json=phone("01632 960103", primary=True))
    assert third["is_primary"]
    status, page = await api(floor, "GET", path, "alice")
    assert [(p["value"], p["is_primary"]) for p in page["entries"]] == [
        ("jo@x.org", True), ("+441632960103", True), ("+441632960101", False), ("+441632960102", False)]
    status, answer = await api(floor, "PATCH", f"/api/contact-points/{third['id']}", "sam", json={"primary": False})
    assert (status, answer["error"]) == (400, "primary: this is the customer's primary phone: "
                                              "make another phone primary instead")
    status, answer = await api(floor, "PATCH", f"/api/contact-points/{second['id']}", "sam", json={"primary": True})
    assert status == 200 and answer["is_primary"]
    status, page = await api(floor, "GET", path, "alice")
    assert [p["value"] for p in page["entries"] if p["is_primary"]] == ["jo@x.org", "+441632960102"]


async def test_a_corrected_number_is_normalised_and_unverified_until_verified_again(floor):
    customer = await new_customer(floor, "AC-1", "Jo", "Doe", phone("+441632960101", verified=True))
    point = customer["contact_points"][0]
    status, changed = await api(floor, "PATCH", f"/api/contact-points/{point['id']}", "sam",
                                json={"value": "01632 960109"})
    assert status == 200 and (changed["value"], changed["verified"]) == ("+441632960109", False)
    status, changed = await api(floor, "PATCH", f"/api/contact-points/{point['id']}", "sam", json={"verified": True})
    assert changed["verified"]
    other = await new_customer(floor, "AC-2", "Al", "Roe", phone("+441632960201"))
    status, answer = await api(floor, "PATCH", f"/api/contact-points/{point['id']}", "sam",
                               json={"value": "+441632960201"})
    assert (status, answer["id"]) == (409, "contact-point-taken") and str(other["id"]) in answer["error"]
    status, answer = await api(floor, "PATCH", f"/api/contact-points/{point['id']}", "sam", json={"kind": "email"})
    assert (status, answer["error"].split(";")[0]) == (400, "kind: unknown field")


async def test_a_customer_is_changed_field_by_field_and_only_an_admin_sets_a_legal_hold(floor):
    customer = await new_customer(floor, "AC-1", "Jo", "Doe", phone("+441632960101"), segment="consumer")
    path = f"/api/customers/{customer['id']}"
    status, changed = await api(floor, "PATCH", path, "sam", json={"tier": "reactive", "segment": None,
                                                                   "churn_risk": True})
    assert status == 200 and (changed["tier"], changed["segment"], changed["churn_risk"]) == ("reactive", None, True)
    assert changed["first_name"] == "Jo" and changed["contact_points"] == customer["contact_points"]
    assert (await api(floor, "PATCH", path, "sam", json={"first_name": None}))[1]["error"] == (
        "first_name: expected a string, got null")
    status, answer = await api(floor, "PATCH", path, "sam", json={"legal_hold": True})
    assert (status, answer["error"]) == (403, "legal_hold: only an admin sets or lifts a legal hold")
    status, changed = await api(floor, "PATCH", path, "ada", json={"legal_hold": True})
    assert status == 200 and changed["legal_hold"]
    assert (await api(floor, "PATCH", path, "alice", json={"tier": "basic"}))[0] == 403
    assert (await api(floor, "PATCH", "/api/customers/999999", "sam", json={"tier": "basic"}))[1]["id"] == (
        "no-such-customer")


async def test_an_erased_customer_takes_no_new_data(floor):
    customer = await new_customer(floor, "AC-1", "Jo", "Doe", phone("+441632960101"))
    path = f"/api/customers/{customer['id']}"
    assert (await api(floor, "POST", f"/api/admin/customers/{customer['id']}/erase", "ada",
                      json={"reason": "request ER-1"}))[0] == 200
    for method, suffix, body in (("PATCH", "", {"first_name": "Jo"}), ("POST", "/contact-points", email("j@x.org")),
                                 ("POST", "/tickets", {"subject": "router"}),
                                 ("POST", "/consents", {"purpose": "marketing", "channel": "sms", "granted": True})):
        status, answer = await api(floor, method, path + suffix, "ada", json=body)
        assert (status, answer["id"]) == (409, "customer-erased"), (method, suffix)
    status, opened = await api(floor, "GET", path, "alice")
    assert status == 200 and opened["first_name"] == "erased" and opened["contact_points"] == []


# -- searching and paging -----------------------------------------------------------------------------------------

async def test_customers_are_found_by_each_filter_and_paged_without_overlap(floor):
    made = []
    for n, (first, last, tier, segment) in enumerate([
            ("Jane", "Smith", "basic", "consumer"), ("John", "Smith", "proactive", "business"),
            ("Ann", "Smith", "basic", "business"), ("Zoe", "Brown", "reactive", None),
            ("Jane", "Adams", "basic", "consumer")]):
        made.append(await new_customer(floor, f"AC-{n}", first, last, phone(f"+44163296010{n}"),
                                       email(f"{first}.{last}{n}@example.org"), tier=tier,
                                       **({"segment": segment} if segment else {})))

    async def names(query: str) -> list[str]:
        status, page = await api(floor, "GET", f"/api/customers?{query}", "alice")
        assert status == 200, page
        return [f"{c['first_name']} {c['last_name']}" for c in page["entries"]]

    assert await names("last_name=Smith") == ["Ann Smith", "Jane Smith", "John Smith"]  # by last, then first name
    assert await names("last_name=Smith&first_name=Jane") == ["Jane Smith"]
    assert await names("email=JOHN.SMITH1@EXAMPLE.ORG") == ["John Smith"]
    assert await names("phone=01632%20960103") == ["Zoe Brown"]
    assert await names("phone=%2B441632960104") == ["Jane Adams"]
    assert await names("account_number=AC-2") == ["Ann Smith"]
    assert await names("tier=basic&segment=consumer") == ["Jane Adams", "Jane Smith"]
    assert await names("last_name=Nobody") == []
    seen, totals = [], set()
    for offset in range(0, 6, 2):
        status, page = await api(floor, "GET", f"/api/customers?limit=2&offset={offset}", "alice")
        seen += [c["id"] for c in page["entries"]]
        totals.add((page["total"], page["limit"], page["offset"] == offset))
    assert sorted(seen) == sorted(c["id"] for c in made) and totals == {(5, 2, True)}


BAD_QUERIES = [
    ("limit=0", "limit"), ("limit=501", "limit"), ("limit=ten", "limit"), ("offset=-1", "offset"),
    ("offset=99999999999999999999", "offset"), ("tier=gold", "tier"), ("phone=12", "phone"),
    ("email=nobody", "email"), ("last_name=", "last_name"), ("segment=%00", "segment")]


async def test_a_bad_query_string_is_refused_naming_the_parameter(floor):
    cases = [(query, f"{field}:") for query, field in BAD_QUERIES]
    assert await refusals(floor, "GET", lambda query: f"/api/customers?{query}", "alice", cases) == []


async def seed_history(stack) -> dict:
    """Two customers' calls, tickets, transactions and surveys, by id."""
    alice, bob = stack.ids["alice"], stack.ids["bob"]
    async with stack.services.sessions() as session, session.begin():
        one = Customer(account_number="AC-1", first_name="Jo", last_name="Doe", created_at=DAY)
        two = Customer(account_number="AC-2", first_name="Al", last_name="Roe", created_at=DAY)
        sales, support = Queue(name="sales"), await session.scalar(select(Queue).where(Queue.name == "support"))
        session.add_all([one, two, sales])
        await session.flush()
        calls = [Interaction(call_id=f"c{n}", customer_id=customer.id, agent_id=agent, queue_id=queue.id,
                             arrived_at=DAY + timedelta(hours=n), ended_at=DAY + timedelta(hours=n, minutes=5),
                             disposition=disposition)
                 for n, (customer, agent, queue, disposition) in enumerate([
                     (one, alice, support, "resolved"), (one, bob, sales, "follow-up"), (two, alice, sales, None),
                     (two, None, support, None)])]
        session.add_all(calls)
        await session.flush()
        # c3 was answered by bob, then transferred away: his leg makes it his call too
        session.add(InteractionLeg(call_id="c3", agent_device="PJSIP/agent2", agent_id=bob,
                                   joined_at=DAY + timedelta(hours=3)))
        session.add_all([
            Transaction(customer_id=one.id, kind="order", reference="ORD-1", amount=Decimal("59.99"), currency="GBP",
                        occurred_at=DAY, items=[{"sku": "RT-1", "quantity": 1}]),
            Transaction(customer_id=two.id, kind="refund", reference="REF-2", amount=Decimal("5"), currency="GBP",
                        occurred_at=DAY),
            SurveyResponse(customer_id=one.id, call_id="c0", question="csat", score=5, answered_at=DAY),
            SurveyResponse(customer_id=two.id, call_id="c2", question="nps", score=9, answered_at=DAY)])
    return {"one": one.id, "two": two.id, "calls": [c.id for c in calls]}


async def test_interactions_are_found_by_customer_agent_queue_dates_and_disposition(floor):
    seeded = await seed_history(floor)

    async def calls(query: str) -> list[str]:
        status, page = await api(floor, "GET", f"/api/interactions?{query}", "sam")
        assert status == 200, page
        return [c["call_id"] for c in page["entries"]]

    assert await calls(f"customer_id={seeded['one']}") == ["c1", "c0"]  # latest first
    assert await calls(f"agent_id={floor.ids['bob']}") == ["c3", "c1"]
    assert await calls("queue=sales") == ["c2", "c1"]
    assert await calls("from=2026-11-24T10:00:00Z&to=2026-11-24T12:00:00Z") == ["c2", "c1"]
    assert await calls("from=2026-11-24T11:00:00%2B01:00") == ["c3", "c2", "c1"]  # 10:00 UTC
    assert await calls("disposition=follow-up") == ["c1"]
    assert await calls("queue=sales&customer_id=" + str(seeded["two"])) == ["c2"]
    status, answer = await api(floor, "GET", "/api/interactions?from=yesterday", "sam")
    assert status == 400 and answer["error"].startswith("from: 'yesterday' is not an ISO date and time")
    status, page = await api(floor, "GET", f"/api/customers/{seeded['two']}/interactions", "alice")
    assert [c["call_id"] for c in page["entries"]] == ["c3", "c2"] and page["total"] == 2
    status, call = await api(floor, "GET", f"/api/interactions/{seeded['calls'][3]}", "alice")
    assert [leg["agent_device"] for leg in call["legs"]] == ["PJSIP/agent2"]


async def test_transactions_and_survey_responses_are_found_by_their_filters(floor):
    seeded = await seed_history(floor)
    status, page = await api(floor, "GET", "/api/transactions?reference=ORD-1", "alice")
    assert [(t["customer_id"], t["amount"], t["items"]) for t in page["entries"]] == [
        (seeded["one"], "59.99", [{"sku": "RT-1", "quantity": 1}])]
    status, page = await api(floor, "GET", "/api/transactions?kind=refund", "alice")
    assert [t["reference"] for t in page["entries"]] == ["REF-2"]
    status, one = await api(floor, "GET", f"/api/transactions/{page['entries'][0]['id']}", "alice")
    assert status == 200 and one["occurred_at"] == "2026-11-24T09:00:00+00:00"
    status, page = await api(floor, "GET", f"/api/customers/{seeded['two']}/transactions", "alice")
    assert [t["reference"] for t in page["entries"]] == ["REF-2"]
    status, page = await api(floor, "GET", "/api/survey-responses?question=nps", "sam")
    assert [(s["customer_id"], s["score"]) for s in page["entries"]] == [(seeded["two"], 9)]
    status, page = await api(floor, "GET", "/api/survey-responses?call_id=c0", "sam")
    assert [s["question"] for s in page["entries"]] == ["csat"]
    status, page = await api(floor, "GET", f"/api/customers/{seeded['one']}/survey-responses", "alice")
    assert page["total"] == 1
    assert (await api(floor, "GET", "/api/customers/999999/transactions", "alice"))[1]["id"] == "no-such-customer"


# -- tickets ------------------------------------------------------------------------------------------------------

async def test_a_ticket_is_opened_and_each_change_is_one_history_event(floor):
    seeded = await seed_history(floor)
    status, ticket = await api(floor, "POST", f"/api/customers/{seeded['one']}/tickets", "alice", json={
        "subject": "Router keeps dropping", "priority": "high", "resolve_due": "2026-11-25T17:00:00+01:00"})
    assert status == 201, ticket
    assert (ticket["status"], ticket["priority"], ticket["owner_id"]) == ("open", "high", None)
    assert ticket["resolve_due"] == "2026-11-25T16:00:00+00:00"
    assert [(e["field"], e["old_value"], e["new_value"]) for e in ticket["history"]] == [("status", None, "open")]
    path = f"/api/tickets/{ticket['id']}"
    status, ticket = await api(floor, "PATCH", path, "alice", json={
        "status": "pending", "owner_id": floor.ids["alice"], "priority": "high", "note": "engineer booked"})
    assert status == 200 and (ticket["status"], ticket["owner_id"]) == ("pending", floor.ids["alice"])
    assert [(e["field"], e["old_value"], e["new_value"], e["actor_id"]) for e in ticket["history"][1:]] == [
        ("status", "open", "pending", floor.ids["alice"]), ("owner", None, str(floor.ids["alice"]), floor.ids["alice"]),
        ("note", None, "engineer booked", floor.ids["alice"])]  # the unchanged priority wrote no event
    status, answer = await api(floor, "PATCH", path, "bob", json={"status": "resolved"})
    assert (status, answer["id"]) == (403, "not-your-ticket")
    status, ticket = await api(floor, "PATCH", path, "sam", json={"owner_id": floor.ids["bob"], "status": "closed"})
    assert status == 200 and ticket["closed_at"] is not None
    status, answer = await api(floor, "PATCH", path, "sam", json={"status": "open"})
    assert (status, answer["id"]) == (409, "ticket-closed")
    status, opened = await api(floor, "GET", path, "bob")
    assert opened == ticket and len(opened["history"]) == 6


BAD_TICKETS = [
    ({}, "subject: required"), ({"subject": "x", "priority": "asap"}, "priority: expected one of low, normal"),
    ({"subject": "x", "owner_id": "alice"}, "owner_id: expected a whole number, got str"),
    ({"subject": "x", "owner_id": True}, "owner_id: expected a whole number, got bool"),
    ({"subject": "x", "owner_id": 999999}, "owner_id: no agent 999999"),
    ({"subject": "x", "resolve_due": "tomorrow"}, "resolve_due: 'tomorrow' is not an ISO date and time"),
    ({"subject": "x", "resolve_due": "0001-01-01T00:00:00+01:00"}, "resolve_due: '0001-01-01T00:00:00+01:00' is "
                                                                   "outside the years 1 to 9999 in UTC"),
    ({"subject": "x", "status": "open"}, "status: unknown field")]


async def test_a_bad_ticket_body_is_refused_naming_the_field(floor):
    seeded = await seed_history(floor)
    assert await refusals(floor, "POST", f"/api/customers/{seeded['one']}/tickets", "alice", BAD_TICKETS) == []


async def test_tickets_are_found_by_customer_status_priority_owner_and_overdue(floor):
    seeded = await seed_history(floor)
    now = datetime.now(UTC)
    made = {}
    for name, customer, priority, owner, due in (
            ("late", "one", "urgent", "alice", now - timedelta(hours=1)), ("due", "one", "normal", None,
                                                                          now + timedelta(days=1)),
            ("undated", "two", "low", "bob", None), ("late but closed", "two", "urgent", "bob",
                                                     now - timedelta(days=2))):
        body = {"subject": name, "priority": priority, "owner_id": owner and floor.ids[owner],
                "resolve_due": due and due.isoformat()}
        made[name] = (await api(floor, "POST", f"/api/customers/{seeded[customer]}/tickets", "sam", json=body))[1]
    await api(floor, "PATCH", f"/api/tickets/{made['late but closed']['id']}", "sam", json={"status": "closed"})

    async def subjects(query: str) -> set[str]:
        status, page = await api(floor, "GET", f"/api/tickets?{query}", "alice")
        assert status == 200, page
        assert page["total"] == len(page["entries"])
        return {t["subject"] for t in page["entries"]}

    assert await subjects("overdue=true") == {"late"}
    assert await subjects("overdue=false") == {"due", "undated", "late but closed"}
    assert await subjects(f"customer_id={seeded['two']}") == {"undated", "late but closed"}
    assert await subjects("status=closed") == {"late but closed"}
    assert await subjects("priority=urgent&status=open") == {"late"}
    assert await subjects(f"owner_id={floor.ids['bob']}") == {"undated", "late but closed"}
    status, page = await api(floor, "GET", f"/api/customers/{seeded['one']}/tickets", "alice")
    assert [t["subject"] for t in page["entries"]] == ["due", "late"]  # newest first
    assert (await api(floor, "GET", "/api/tickets?overdue=yes", "alice"))[1]["error"].startswith("overdue:")


# -- consents -----------------------------------------------------------------------------------------------------

async def test_a_consent_is_granted_then_withdrawn_and_the_latest_answer_counts(floor):
    seeded = await seed_history(floor)
    path = f"/api/customers/{seeded['one']}/consents"
    status, granted = await api(floor, "POST", path, "alice", json={"purpose": "marketing", "channel": "email",
                                                                     "granted": True})
    assert status == 201 and (granted["granted"], granted["source"]) == (True, "agent")
    async with floor.services.sessions() as session:
        assert await consent_state(session, seeded["one"], "marketing", "email")
    status, withdrawn = await api(floor, "POST", path, "alice", json={"purpose": "marketing", "channel": "email",
                                                                       "granted": False, "source": "ivr"})
    assert status == 201
    async with floor.services.sessions() as session:
        assert not await consent_state(session, seeded["one"], "marketing", "email")
    await api(floor, "POST", f"/api/customers/{seeded['two']}/consents", "alice",
              json={"purpose": "survey", "channel": "phone", "granted": True})
    status, page = await api(floor, "GET", path, "alice")
    assert [c["id"] for c in page["entries"]] == [withdrawn["id"], granted["id"]]  # both kept, latest first
    status, page = await api(floor, "GET", "/api/consents?purpose=marketing&channel=email&granted=false", "sam")
    assert [c["id"] for c in page["entries"]] == [withdrawn["id"]]
    status, page = await api(floor, "GET", f"/api/consents?customer_id={seeded['two']}", "sam")
    assert [c["purpose"] for c in page["entries"]] == ["survey"]
    for body, error in (({"channel": "email", "granted": True}, "purpose: required"),
                        ({"purpose": "spam", "channel": "email", "granted": True}, "purpose: expected one of"),
                        ({"purpose": "survey", "channel": "email", "granted": "yes"},
                         "granted: expected true or false, got str")):
        status, answer = await api(floor, "POST", path, "alice", json=body)
        assert status == 400 and answer["error"].startswith(error), answer


# -- an ended call's wrap-up --------------------------------------------------------------------------------------

async def test_an_ended_call_takes_a_note_and_a_missing_disposition_but_keeps_a_recorded_one(floor):
    seeded = await seed_history(floor)
    resolved, open_call, leg_call = seeded["calls"][0], seeded["calls"][2], seeded["calls"][3]
    status, call = await api(floor, "PATCH", f"/api/interactions/{open_call}", "alice",
                             json={"disposition": "escalated", "note": "called back, fixed"})
    assert status == 200 and (call["disposition"], call["notes"]) == ("escalated", "called back, fixed")
    status, call = await api(floor, "PATCH", f"/api/interactions/{open_call}", "alice", json={"note": "second"})
    assert call["notes"] == "called back, fixed\nsecond"
    status, answer = await api(floor, "PATCH", f"/api/interactions/{resolved}", "alice",
                               json={"disposition": "escalated"})
    assert (status, answer["id"]) == (409, "disposition-recorded")
    status, answer = await api(floor, "PATCH", f"/api/interactions/{open_call}", "bob", json={"note": "hi"})
    assert (status, answer["id"]) == (403, "not-your-call")
    assert (await api(floor, "PATCH", f"/api/interactions/{leg_call}", "bob", json={"note": "mine"}))[0] == 200
    assert (await api(floor, "PATCH", f"/api/interactions/{open_call}", "sam", json={"note": "checked"}))[0] == 200
    status, answer = await api(floor, "PATCH", f"/api/interactions/{leg_call}", "sam", json={"disposition": "won"})
    assert status == 400 and answer["error"].startswith("disposition: expected one of resolved, follow-up")


async def test_a_live_call_or_one_in_wrap_up_is_left_to_its_agent(floor):
    seeded = await seed_history(floor)
    call_id = seeded["calls"][2]
    async with floor.services.sessions() as session, session.begin():
        await session.execute(update(Interaction).where(Interaction.id == call_id).values(ended_at=None))
    status, answer = await api(floor, "PATCH", f"/api/interactions/{call_id}", "sam", json={"note": "x"})
    assert (status, answer["id"]) == (409, "call-in-progress")
    async with floor.services.sessions() as session, session.begin():
        await session.execute(update(Interaction).where(Interaction.id == call_id).values(ended_at=DAY))
    floor.services.router.calls["c2"] = object()  # in wrap-up: the router still holds it
    try:
        status, answer = await api(floor, "PATCH", f"/api/interactions/{call_id}", "sam", json={"note": "x"})
    finally:
        del floor.services.router.calls["c2"]
    assert (status, answer["id"]) == (409, "call-in-progress")


# -- the audit trail ----------------------------------------------------------------------------------------------

async def test_opening_a_record_writes_one_audit_entry_naming_who_which_customer_and_the_route(floor):
    seeded = await seed_history(floor)
    one = seeded["one"]
    ticket = (await api(floor, "POST", f"/api/customers/{one}/tickets", "alice", json={"subject": "x"}))[1]
    before = len(await audit_rows(floor, entity="customer", entity_id=str(one)))
    reads = [f"/api/customers/{one}", f"/api/customers/{one}/contact-points", f"/api/customers/{one}/transactions",
             f"/api/customers/{one}/interactions", f"/api/customers/{one}/tickets",
             f"/api/customers/{one}/survey-responses", f"/api/customers/{one}/consents", f"/api/tickets/{ticket['id']}",
             f"/api/interactions/{seeded['calls'][0]}"]
    for path in reads:
        assert (await api(floor, "GET", path, "bob"))[0] == 200, path
    rows = (await audit_rows(floor, entity="customer", entity_id=str(one)))[before:]
    assert [(r.action, r.actor_id) for r in rows] == [("view", floor.ids["bob"])] * len(reads)
    assert [r.reason.split(":")[0] for r in rows] == [
        "GET /api/customers/{customer_id}", "GET /api/customers/{customer_id}/contact-points",
        "GET /api/customers/{customer_id}/transactions", "GET /api/customers/{customer_id}/interactions",
        "GET /api/customers/{customer_id}/tickets", "GET /api/customers/{customer_id}/survey-responses",
        "GET /api/customers/{customer_id}/consents", "GET /api/tickets/{ticket_id}",
        "GET /api/interactions/{interaction_id}"]
    assert rows[-2].reason.endswith(f"ticket {ticket['id']}")
    assert all(abs(r.at.replace(tzinfo=UTC) - datetime.now(UTC)) < timedelta(minutes=1) for r in rows)
    status, export = await api(floor, "GET", f"/api/admin/customers/{one}/export", "ada")
    assert sum(a["action"] == "view" for a in export["audit"]) == len(reads)  # the customer's export lists them


async def test_a_search_writes_one_audit_entry_naming_its_filters_but_not_their_values(floor):
    for n in range(3):
        await new_customer(floor, f"AC-{n}", "Jane", "Smith", email(f"jane{n}@example.org"))
    before = len(await audit_rows(floor, action="search"))
    status, page = await api(floor, "GET", "/api/customers?last_name=Smith&email=jane1@example.org", "alice")
    assert page["total"] == 1
    assert (await api(floor, "GET", "/api/customers?last_name=Smith", "alice"))[1]["total"] == 3
    assert (await api(floor, "GET", "/api/customers?limit=2", "alice"))[1]["total"] == 3
    rows = (await audit_rows(floor, action="search"))[before:]
    assert [(r.entity, r.entity_id, r.reason) for r in rows] == [
        ("customer", "*", "GET /api/customers: customer search by last_name, email; 1 of 1 shown"),
        ("customer", "*", "GET /api/customers: customer search by last_name; 3 of 3 shown"),
        ("customer", "*", "GET /api/customers: customer search; 2 of 3 shown")]
    status, page = await api(floor, "GET", "/api/tickets?customer_id=1", "alice")
    row = (await audit_rows(floor, action="search"))[-1]
    assert (row.entity, row.entity_id) == ("customer", "1")  # a search of one customer's records is about them


async def test_every_change_writes_one_audit_entry_under_its_customer(floor):
    customer = await new_customer(floor, "AC-1", "Jo", "Doe", phone("+441632960101"))
    cid = customer["id"]
    point = (await api(floor, "POST", f"/api/customers/{cid}/contact-points", "sam", json=email("jo@x.org")))[1]
    changes = [
        ("PATCH", f"/api/customers/{cid}", {"tier": "reactive"}),
        ("PATCH", f"/api/contact-points/{point['id']}", {"verified": True}),
        ("POST", f"/api/customers/{cid}/tickets", {"subject": "x"}),
        ("POST", f"/api/customers/{cid}/consents", {"purpose": "survey", "channel": "phone", "granted": True}),
    ]
    for method, path, body in changes:
        assert (await api(floor, method, path, "sam", json=body))[0] in (200, 201), path
    rows = [(r.action, r.actor_id, r.reason) for r in await audit_rows(floor, entity="customer", entity_id=str(cid))]
    sam = floor.ids["sam"]
    assert rows == [
        ("create", sam, "POST /api/customers: with 1 contact point"),
        ("create", sam, f"POST /api/customers/{{customer_id}}/contact-points: contact_point {point['id']} (email)"),
        ("change", sam, "PATCH /api/customers/{customer_id}: tier"),
        ("change", sam, f"PATCH /api/contact-points/{{contact_point_id}}: contact_point {point['id']} verified"),
        ("create", sam, rows[4][2]), ("create", sam, rows[5][2])]
    assert rows[4][2].startswith("POST /api/customers/{customer_id}/tickets: ticket ")
    assert rows[5][2].endswith("survey by phone granted")
    audited = " ".join(r[2] for r in rows)
    assert "Jo" not in audited and "AC-1" not in audited and "jo@x.org" not in audited  # erasure could not reach it


async def test_a_refused_change_writes_nothing(floor):
    customer = await new_customer(floor, "AC-1", "Jo", "Doe", phone("+441632960101"))
    before = await audit_rows(floor)
    await api(floor, "PATCH", f"/api/customers/{customer['id']}", "sam", json={"tier": "gold"})
    await api(floor, "POST", f"/api/customers/{customer['id']}/contact-points", "sam", json=phone("+441632960101"))
    assert len(await audit_rows(floor)) == len(before)


# -- the API as a whole -------------------------------------------------------------------------------------------

def spec_operations() -> list[tuple[str, str, list[str]]]:
    return [(method.upper(), path, operation["x-roles"]) for path, item in SPEC["paths"].items()
            for method, operation in item.items() if method != "parameters"]


async def test_every_api_route_is_in_the_openapi_file_and_every_operation_is_served(stack):
    served = {(route.method, route.resource.canonical) for route in stack.app.router.routes()
              if route.resource.canonical.startswith("/api/") and route.method != "HEAD"}
    assert served == {(method, path) for method, path, _ in spec_operations()}


async def test_the_openapi_file_is_served_without_a_login_and_matches_the_tables(stack):
    status, text = await api(stack, "GET", "/api/openapi.yaml")
    assert status == 200 and YAML(typ="safe").load(text) == SPEC
    for name, schema in SPEC["components"]["schemas"].items():
        if "x-table" in schema:
            columns = {column.name for column in Base.metadata.tables[schema["x-table"]].columns}
            assert set(schema["properties"]) == columns == set(schema["required"]), name


def concrete(path: str) -> str:
    return path.replace("{customer_id}", "999999").replace("{ticket_id}", "999999").replace(
        "{interaction_id}", "999999").replace("{transaction_id}", "999999").replace("{contact_point_id}", "999999")


async def test_every_route_answers_401_without_a_login_and_403_to_a_role_it_does_not_allow(stack):
    users = {Role.AGENT: "alice", Role.SUPERVISOR: "sam", Role.ADMIN: "ada"}
    for role, username in users.items():
        await stack.add_agent(username, "PJSIP/agent1" if role is Role.AGENT else None, role)
    wrong = []
    for method, path, roles in spec_operations():
        body = {"json": {}} if method in ("POST", "PATCH") else {}
        url = concrete(path)
        status, answer = await api(stack, method, url, **body)
        expected_anonymous = 200 if roles == ["anyone"] else 401
        if status != expected_anonymous or (status == 401 and answer.get("id") != "unauthorized"):
            wrong.append((method, path, "no login", status))
        if roles == ["anyone"]:
            continue
        for role, username in users.items():
            status, answer = await api(stack, method, url, username, **body)
            allowed = role.value in roles
            if allowed and status in (401, 403) or not allowed and (status, answer.get("id")) != (403, "forbidden"):
                wrong.append((method, path, role.value, status))
    assert wrong == []


async def test_unknown_routes_and_methods_answer_json_errors(stack):
    await stack.add_agent("ada", None, Role.ADMIN)
    status, answer = await api(stack, "GET", "/api/nothing-here", "ada")
    assert (status, answer) == (404, {"error": "not found: GET /api/nothing-here", "id": "not-found"})
    status, answer = await api(stack, "DELETE", "/api/customers/1", "ada")
    assert (status, answer["id"]) == (405, "method-not-allowed")
    status, answer = await api(stack, "GET", "/api/customers/abc", "ada")
    assert (status, answer["id"]) == (404, "not-found")
    status, answer = await api(stack, "POST", "/api/customers", "ada", data="x" * 100_000,
                               headers={"Content-Type": "application/json"})
    assert (status, answer["id"]) == (413, "request-entity-too-large")
