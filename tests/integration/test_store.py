"""The customer store on SQLite and on PostgreSQL: same code, same answers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select, text

from contactcentre.crm.accounts import authenticate, create_agent
from contactcentre.crm.interactions import InteractionWriter
from contactcentre.crm.models import Agent, ContactPoint, Customer, Interaction
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


async def test_caller_id_lookup_uses_an_index_not_a_scan(sessions):
    await seed_customers(sessions, 200, history=False)
    async with sessions() as session:
        dialect = session.bind.dialect.name
        if dialect == "sqlite":
            plan = (await session.execute(text(
                "EXPLAIN QUERY PLAN SELECT customer_id FROM contact_points WHERE kind = 'phone' AND value = :v"),
                {"v": demo_phone(3)})).all()
            detail = " ".join(str(row[-1]) for row in plan)
            assert "USING INDEX" in detail or "USING COVERING INDEX" in detail, detail
        else:
            await session.execute(text("ANALYZE contact_points"))
            await session.execute(text("SET enable_seqscan = off"))
            plan = (await session.execute(text(
                "EXPLAIN SELECT customer_id FROM contact_points WHERE kind = 'phone' AND value = :v"),
                {"v": demo_phone(3)})).all()
            detail = " ".join(row[0] for row in plan)
            assert "uq_contact_points_kind_value" in detail, detail
        assert await session.scalar(select(func.count(ContactPoint.id))) == 200
