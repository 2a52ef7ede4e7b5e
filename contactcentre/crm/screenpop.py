"""What an agent sees the moment a call is offered: the caller's record."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import async_sessionmaker

from contactcentre.crm.models import Agent, ContactPoint, Customer, Interaction
from contactcentre.crm.phones import caller_id_to_e164


@dataclass(frozen=True, slots=True)
class PastInteraction:
    call_id: str
    arrived_at: str
    agent: str | None
    disposition: str | None
    notes: str | None


@dataclass(frozen=True, slots=True)
class CustomerSummary:
    id: int
    name: str
    account_number: str
    tier: str
    customer_since: str
    interactions: list[PastInteraction]


@dataclass(frozen=True, slots=True)
class ScreenPop:
    caller_number: str
    caller_name: str
    customer: CustomerSummary | None

    def as_dict(self) -> dict:
        return asdict(self)


class ScreenPopLookup:
    """Caller ID -> customer through the unique (kind, value) index, then the
    customer's last interactions through (customer_id, arrived_at): two index
    seeks, never a scan."""

    def __init__(self, sessions: async_sessionmaker, default_region: str, interactions: int):
        self._sessions = sessions
        self._region = default_region
        self._limit = interactions

    async def lookup(self, caller_number: str, caller_name: str) -> ScreenPop:
        e164 = caller_id_to_e164(caller_number, self._region)
        if e164 is None:
            return ScreenPop(caller_number, caller_name, None)
        async with self._sessions() as session:
            customer = await session.scalar(
                select(Customer).join(ContactPoint)
                .where(ContactPoint.kind == "phone", ContactPoint.value == e164))
            if customer is None:
                return ScreenPop(e164, caller_name, None)
            rows = (await session.execute(
                select(Interaction.call_id, Interaction.arrived_at, Agent.display_name,
                       Interaction.disposition, Interaction.notes)
                .outerjoin(Agent, Interaction.agent_id == Agent.id)
                .where(Interaction.customer_id == customer.id)
                .order_by(Interaction.arrived_at.desc())
                .limit(self._limit))).all()
        past = [PastInteraction(r.call_id, _iso(r.arrived_at), r.display_name, r.disposition, r.notes) for r in rows]
        summary = CustomerSummary(customer.id, customer.name, customer.account_number, customer.tier.value,
                                  _iso(customer.created_at), past)
        return ScreenPop(e164, caller_name, summary)


def _iso(value: datetime) -> str:
    return value.isoformat(timespec="seconds")
