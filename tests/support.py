"""Helpers the tests share: importable by name, unlike a conftest.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from contactcentre.crm.models import ContactPoint, Customer, Interaction, ServiceTier

PASSWORD = "correct horse battery"  # every agent the tests add signs in with it


async def add_customer(sessions, first: str, last: str, phone: str, tier: ServiceTier,
                       notes: tuple[str, ...] = ()) -> Customer:
    """A customer reachable on `phone`, with one past interaction per note (the first note is the latest)."""
    now = datetime.now(UTC)
    async with sessions() as session, session.begin():
        customer = Customer(account_number=f"AC-{phone[-6:]}", first_name=first, last_name=last, tier=tier,
                            created_at=now - timedelta(days=400))
        session.add(customer)
        await session.flush()
        session.add(ContactPoint(customer_id=customer.id, kind="phone", value=phone))
        for k, note in enumerate(notes):
            session.add(Interaction(call_id=f"old-{phone}-{k}", customer_id=customer.id, caller_number=phone,
                                    arrived_at=now - timedelta(days=10 + k), disposition="resolved", notes=note))
    return customer


async def new_interactions(sessions) -> list[Interaction]:
    async with sessions() as session:
        return list((await session.scalars(select(Interaction).where(~Interaction.call_id.like("old-%")))).all())
