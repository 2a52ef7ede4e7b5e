"""Demo and benchmark data: customers with phone numbers and some history: past calls, and the
post-call survey consent by phone that about two in three of them gave."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import async_sessionmaker

from contactcentre.crm.models import Consent, ContactPoint, Customer, Interaction, ServiceTier, Ticket

FIRST = ["Jane", "John", "Amira", "Bogdan", "Chloe", "Dmitri", "Elena", "Farid", "Grace", "Hiro", "Ines", "Jonas",
         "Kofi", "Lena", "Mateo", "Nadia", "Oscar", "Priya", "Quentin", "Rosa", "Sven", "Tomasz", "Uma", "Viktor",
         "Wen", "Yara", "Zoe", "Aoife", "Bilal", "Carmen"]
LAST = ["Smith", "Doe", "Haddad", "Novak", "Martin", "Ivanov", "Rossi", "Karimi", "Okafor", "Tanaka", "Garcia",
        "Berg", "Mensah", "Schmidt", "Lopez", "Hassan", "Jensen", "Patel", "Dubois", "Silva", "Lindqvist",
        "Kowalski", "Nair", "Petrov", "Chen", "Aziz", "Brown", "Murphy", "Khan", "Ortega"]
TIERS = [ServiceTier.BASIC] * 6 + [ServiceTier.REACTIVE] * 3 + [ServiceTier.PROACTIVE]
DISPOSITIONS = ["resolved", "follow-up", "escalated"]
NOTES = ["Asked about the last invoice.", "Address changed.", "Router replaced under warranty.",
         "Wants a call back about the upgrade.", "Complained about the wait; credited one month."]
SEGMENTS = ["consumer"] * 4 + ["business"]
TICKETS = ["Router keeps dropping the line", "Refund for a double charge", "Engineer visit to book"]
BATCH = 2000
SURVEY_CONSENT_SHARE = 2 / 3
# Numbers are +44 20 7xxx xxxx (London), one per customer, counted up from here.
PHONE_BASE = 442070000000


def demo_phone(n: int) -> str:
    return f"+{PHONE_BASE + n}"


async def seed_customers(sessions: async_sessionmaker, count: int, *, rng: random.Random | None = None,
                         history: bool = True, progress: Callable[[int], None] = lambda n: None) -> int:
    """Add `count` customers, each with one phone number and (if `history`) 0-3 past calls; for about
    two in three a yes to post-call surveys by phone, for about 40% a yes to marketing (the pop's offers
    show for them), and for about a quarter an open ticket."""
    rng = rng or random.Random(7)
    now = datetime.now(UTC)
    async with sessions() as session:
        start = (await session.scalar(select(func.max(Customer.id)))) or 0
    done = 0
    while done < count:
        size = min(BATCH, count - done)
        numbers = range(start + done + 1, start + done + size + 1)
        customers = [{"account_number": f"AC{n:08d}", "first_name": rng.choice(FIRST),
                      "last_name": rng.choice(LAST), "tier": rng.choice(TIERS),
                      "created_at": now - timedelta(days=rng.randint(30, 3000))} for n in numbers]
        profile = random.Random(start + done)  # apart from `rng`, so the names stay what they were
        for customer in customers:
            customer.update(segment=profile.choice(SEGMENTS), churn_risk=profile.random() < 0.15,
                            lifetime_value=Decimal(profile.randint(0, 300000)) / 100)
        async with sessions() as session, session.begin():
            ids = (await session.scalars(insert(Customer).returning(Customer.id, sort_by_parameter_order=True),
                                         customers)).all()
            phones = [{"customer_id": i, "kind": "phone", "value": demo_phone(n)} for i, n in zip(ids, numbers)]
            await session.execute(insert(ContactPoint), phones)
            past = _history(rng, now, ids, numbers) if history else []
            if past:
                await session.execute(insert(Interaction), past)
            consents = _survey_consents(rng, now, ids) if history else []
            if consents:
                await session.execute(insert(Consent), consents)
            if history:
                await _matters_and_consents(session, profile, now, ids)
        done += size
        progress(size)
    return done


async def _matters_and_consents(session, rng: random.Random, now: datetime, ids) -> None:
    tickets = [{"customer_id": i, "subject": rng.choice(TICKETS), "created_at": now - timedelta(days=2),
                "updated_at": now - timedelta(days=1)} for i in ids if rng.random() < 0.25]
    consents = [{"customer_id": i, "purpose": "marketing", "channel": "phone", "granted": True,
                 "at": now - timedelta(days=rng.randint(1, 700)), "source": "seed"} for i in ids if rng.random() < 0.4]
    if tickets:
        await session.execute(insert(Ticket), tickets)
    if consents:
        await session.execute(insert(Consent), consents)


def _history(rng: random.Random, now: datetime, ids, numbers) -> list[dict]:
    past = []
    for i, n in zip(ids, numbers):
        for k in range(rng.randint(0, 3)):
            arrived = now - timedelta(days=rng.randint(1, 400), minutes=rng.randint(0, 600))
            past.append({"call_id": f"seed-{n}-{k}", "channel": "voice", "caller_number": demo_phone(n),
                         "customer_id": i, "arrived_at": arrived, "offered_at": arrived,
                         "answered_at": arrived + timedelta(seconds=20),
                         "ended_at": arrived + timedelta(minutes=rng.randint(2, 15)),
                         "disposition": rng.choice(DISPOSITIONS), "notes": rng.choice(NOTES)})
    return past


def _survey_consents(rng: random.Random, now: datetime, ids) -> list[dict]:
    return [{"customer_id": i, "purpose": "survey", "channel": "phone", "granted": True,
             "at": now - timedelta(days=rng.randint(1, 400)), "source": "ivr"}
            for i in ids if rng.random() < SURVEY_CONSENT_SHARE]


async def customer_count(sessions: async_sessionmaker) -> int:
    async with sessions() as session:
        return await session.scalar(select(func.count(Customer.id))) or 0
