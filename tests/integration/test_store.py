"""The customer store on SQLite and on PostgreSQL: same code, same answers."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, text

from contactcentre.crm.accounts import authenticate, create_agent
from contactcentre.crm.interactions import InteractionWriter
from contactcentre.crm.models import (
    Agent,
    Customer,
    Interaction,
    InteractionLeg,
    SurveyResponse,
    Ticket,
    TicketStatus,
)
from contactcentre.crm.screenpop import ScreenPopLookup
from contactcentre.crm.seed import demo_phone, seed_customers


async def test_seeded_customer_is_found_by_caller_id_in_any_written_form(sessions):
    await seed_customers(sessions, 50)
    lookup = ScreenPopLookup(sessions, "GB", 5)
    pop = await lookup.lookup(demo_phone(17), "")
    assert pop.customer is not None and pop.customer.account_number == "AC00000017"
    national = "0" + demo_phone(17)[3:]  # +4420... dialled in the UK as 020...
    assert (await lookup.lookup(national, "")).customer.id == pop.customer.id
    assert (await lookup.lookup("+19995550100", "")).customer is None
    assert (await lookup.lookup("anonymous", "")).customer is None


async def test_pop_lists_the_latest_interactions_first(sessions):
    await seed_customers(sessions, 1, history=False)
    async with sessions() as session, session.begin():
        customer_id = await session.scalar(select(Customer.id))
        now = datetime.now(UTC)
        for days in (30, 1, 10):
            session.add(Interaction(call_id=f"c{days}", customer_id=customer_id, arrived_at=now - timedelta(days=days),
                                    notes=f"{days} days ago"))
    pop = await ScreenPopLookup(sessions, "GB", 2).lookup(demo_phone(1), "")
    assert [i.notes for i in pop.customer.interactions] == ["1 days ago", "10 days ago"]


async def test_pop_counts_the_open_tickets_in_the_same_round_trip(sessions):
    await seed_customers(sessions, 2, history=False)
    now = datetime.now(UTC)
    async with sessions() as session, session.begin():
        customer_id = await session.scalar(select(Customer.id).order_by(Customer.id))
        for status in (TicketStatus.OPEN, TicketStatus.PENDING, TicketStatus.CLOSED):
            session.add(Ticket(customer_id=customer_id, subject="router", status=status, created_at=now,
                               updated_at=now))
    lookup = ScreenPopLookup(sessions, "GB", 5)
    assert (await lookup.lookup(demo_phone(1), "")).customer.open_tickets == 2
    assert (await lookup.lookup(demo_phone(2), "")).customer.open_tickets == 0


async def test_interaction_writes_are_idempotent_by_call_id(sessions):
    writer = InteractionWriter(sessions)
    arrived = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
    queue_id = await writer.queue_id("support")
    await writer.record("1795622977.0", arrived, disposition="resolved", notes="first")
    await writer.record("1795622977.0", arrived, queue_id=queue_id, ended_at=arrived + timedelta(minutes=3))
    await writer.record("1795622977.0", arrived, queue_id=queue_id, ended_at=arrived + timedelta(minutes=3))
    async with sessions() as session:
        rows = (await session.scalars(select(Interaction))).all()
    assert len(rows) == 1
    assert (rows[0].disposition, rows[0].notes, rows[0].queue_id) == ("resolved", "first", queue_id)
    assert await writer.queue_id("support") == queue_id


async def test_passwords_are_stored_as_argon2_hashes_and_checked(sessions):
    await create_agent(sessions, "alice", "correct horse", "Alice", "PJSIP/agent1")
    async with sessions() as session:
        stored = await session.scalar(select(Agent.password_hash))
    assert stored.startswith("$argon2id$") and "correct horse" not in stored
    assert (await authenticate(sessions, "alice", "correct horse")).username == "alice"
    assert await authenticate(sessions, "alice", "wrong") is None
    assert await authenticate(sessions, "nobody", "correct horse") is None


HOT_PATHS = {
    # what the product asks of the store on every call or search
    "caller-ID lookup": "SELECT customer_id FROM contact_points WHERE kind = 'phone' AND value = :v",
    "customer by e-mail": "SELECT customer_id FROM contact_points WHERE kind = 'email' AND value = :v",
    "customer by name": "SELECT id FROM customers WHERE last_name = :v AND first_name = 'Jane'",
    "customer by account number": "SELECT id FROM customers WHERE account_number = :v",
    "recent interactions of a customer":
        "SELECT id FROM interactions WHERE customer_id = 3 ORDER BY arrived_at DESC LIMIT 5",
    "open tickets of a customer": "SELECT id FROM tickets WHERE customer_id = 3 AND status = 'open'",
    "phone numbers of a customer": "SELECT value FROM contact_points WHERE customer_id = 3 AND kind = 'phone'",
    "latest marketing consent of a customer":
        "SELECT granted FROM consents WHERE customer_id = 3 AND purpose = 'marketing' AND channel = 'phone' "
        "ORDER BY at DESC, id DESC LIMIT 1",
    "callbacks due": "SELECT id FROM callbacks WHERE status = 'scheduled' AND due_at <= '2030-01-01' "
                     "ORDER BY due_at LIMIT 5",
}


async def query_plan(session, sql: str, value: str) -> str:
    if session.bind.dialect.name == "sqlite":
        rows = (await session.execute(text(f"EXPLAIN QUERY PLAN {sql}"), {"v": value})).all()
        return " ".join(str(row[-1]) for row in rows)
    await session.execute(text("SET enable_seqscan = off"))  # tiny tables: ask whether an index *can* serve
    rows = (await session.execute(text(f"EXPLAIN {sql}"), {"v": value})).all()
    return " ".join(row[0] for row in rows)


@pytest.mark.parametrize("path", list(HOT_PATHS))
async def test_hot_paths_use_an_index_not_a_scan(sessions, path):
    await seed_customers(sessions, 200)
    async with sessions() as session:
        plan = await query_plan(session, HOT_PATHS[path], demo_phone(3))
    if session.bind.dialect.name == "sqlite":
        assert plan.startswith("SEARCH") and "USING" in plan and "TEMP B-TREE" not in plan, plan
    else:
        assert "Index" in plan and "Seq Scan" not in plan and "Sort" not in plan, plan


async def test_the_schema_the_migrations_make_is_the_one_the_models_describe(database_url):
    from alembic import command
    from alembic.util.exc import AutogenerateDiffsDetected

    from contactcentre.crm.store import alembic_config

    try:  # alembic runs its own event loop: give it a thread
        await asyncio.to_thread(command.check, alembic_config(database_url))
    except AutogenerateDiffsDetected as exc:  # pragma: no cover - the message is the point
        raise AssertionError(f"models and migrations differ: {exc}") from None


async def test_a_transferred_call_keeps_one_leg_per_agent_and_rewrites_none(sessions):
    agent = await create_agent(sessions, "alice", "correct horse", "Alice", "PJSIP/agent1")
    writer = InteractionWriter(sessions)
    t0 = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
    legs = [{"agent_device": "PJSIP/agent1", "joined_at": t0, "left_at": t0 + timedelta(seconds=60),
             "talk_seconds": 55.0, "hold_seconds": 5.0},
            {"agent_device": "PJSIP/agent3", "joined_at": t0 + timedelta(seconds=60), "left_at": None,
             "talk_seconds": 40.0, "hold_seconds": 0.0}]
    for _ in range(2):  # a retry writes the same rows, not new ones
        await writer.record("c-xfer", t0, ended_at=t0 + timedelta(seconds=100), legs=legs)
    async with sessions() as session:
        rows = (await session.execute(select(
            InteractionLeg.agent_device, InteractionLeg.agent_id, InteractionLeg.talk_seconds,
            InteractionLeg.hold_seconds).order_by(InteractionLeg.joined_at))).all()
    assert [tuple(r) for r in rows] == [("PJSIP/agent1", agent.id, 55.0, 5.0), ("PJSIP/agent3", None, 40.0, 0.0)]


async def test_survey_answers_land_before_the_call_end_once_per_question_and_never_twice(sessions):
    await seed_customers(sessions, 1, history=False)
    writer = InteractionWriter(sessions)
    t0 = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
    first = {"question": "agent", "score": 4, "answered_at": t0 + timedelta(minutes=5)}
    second = {"question": "solved", "score": 2, "answered_at": t0 + timedelta(minutes=5, seconds=4)}
    # the caller's answers come before the call-end write (the caller is still on the line), one at a
    # time, each write holding all the answers so far; a retry writes them again
    await writer.record("c-survey", t0, customer_id=1, survey=[first])
    for _ in range(2):
        await writer.record("c-survey", t0, customer_id=1, survey=[first, second])
    await writer.record("c-survey", t0, customer_id=1, ended_at=t0 + timedelta(minutes=6), disposition="resolved")
    async with sessions() as session:
        row = await session.scalar(select(Interaction).where(Interaction.call_id == "c-survey"))
        answers = (await session.execute(select(SurveyResponse.question, SurveyResponse.score,
                                                SurveyResponse.customer_id).order_by(SurveyResponse.question))).all()
    assert (row.survey, row.disposition, row.customer_id) == ({"agent": 4, "solved": 2}, "resolved", 1)
    assert row.ended_at is not None
    assert [tuple(a) for a in answers] == [("agent", 4, 1), ("solved", 2, 1)]


async def test_pop_suggests_an_offer_only_to_a_customer_whose_latest_marketing_answer_is_yes(sessions):
    from decimal import Decimal

    from contactcentre.config import DEFAULT_CONFIG
    from contactcentre.crm.models import ContactPoint
    from contactcentre.crm.offers import load_offers
    from tests.support import add_consent

    await seed_customers(sessions, 1, history=False)
    async with sessions() as session, session.begin():
        customer = await session.scalar(select(Customer))
        customer.churn_risk, customer.lifetime_value = True, Decimal("800.00")
        session.add(ContactPoint(customer_id=customer.id, kind="phone", value="+447700900123"))
        session.add(ContactPoint(customer_id=customer.id, kind="email", value="x@example.org"))
    lookup = ScreenPopLookup(sessions, "GB", 5, load_offers(DEFAULT_CONFIG.parent / "offers.yaml"))
    day = datetime(2026, 11, 1, tzinfo=UTC)

    assert (await lookup.lookup(demo_phone(1), "")).customer.offer is None  # no answer is no
    await add_consent(sessions, customer.id, "marketing", True, at=day)
    pop = await lookup.lookup(demo_phone(1), "")
    assert (pop.customer.offer.id, pop.customer.offer.why) == (
        "loyalty-discount", "flagged as a churn risk, and has spent 500 or more with us")
    assert pop.customer.phones == [demo_phone(1), "+447700900123"]  # the number on the call first, no e-mail
    await add_consent(sessions, customer.id, "marketing", False, at=day + timedelta(days=1))
    assert (await lookup.lookup("+447700900123", "")).customer.offer is None
    assert (await lookup.lookup("+447700900123", "")).customer.phones == ["+447700900123", demo_phone(1)]


async def test_the_pop_with_offer_phones_and_tickets_is_one_statement(sessions):
    from sqlalchemy import event

    await seed_customers(sessions, 3)
    engine = sessions.kw["bind"].sync_engine
    statements = []
    listener = lambda conn, cursor, sql, *rest: statements.append(sql)  # noqa: E731
    event.listen(engine, "before_cursor_execute", listener)
    try:
        pop = await ScreenPopLookup(sessions, "GB", 5).lookup(demo_phone(2), "")
    finally:
        event.remove(engine, "before_cursor_execute", listener)
    assert pop.customer is not None
    assert len([s for s in statements if s.lstrip().upper().startswith("SELECT")]) == 1, statements
