"""What an agent sees the moment a call is offered: the caller's record."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime

from sqlalchemy import bindparam, func, select, true
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlalchemy.orm import aliased

from contactcentre.crm.consent import Purpose
from contactcentre.crm.models import Agent, Consent, ContactPoint, Customer, Interaction, Ticket, TicketStatus
from contactcentre.crm.offers import Offer, OfferRules
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
    open_tickets: int
    interactions: list[PastInteraction]
    phones: list[str]  # every phone number the customer holds, the one on this call first
    offer: Offer | None  # only for a customer whose latest marketing consent by phone is a yes


@dataclass(frozen=True, slots=True)
class ScreenPop:
    caller_number: str
    caller_name: str
    customer: CustomerSummary | None

    def as_dict(self) -> dict:
        return asdict(self)


class ScreenPopLookup:
    """Caller ID -> everything the pop shows, in one statement (one round trip to the store).

    The contact point is found through the unique (kind, value) index, the
    customer by its key, its last interactions through (customer_id,
    arrived_at) in a correlated subquery with LIMIT, the count of its open
    tickets through (customer_id, status), its phone numbers through
    (customer_id), and its latest marketing consent by phone through
    (customer_id, purpose, channel, at): index seeks only, never a scan. The
    suggested offer is then picked from the row by the offer rules, in Python.
    """

    def __init__(self, sessions: async_sessionmaker, default_region: str, interactions: int,
                 offers: OfferRules | None = None):
        self._sessions = sessions
        self._region = default_region
        self._offers = offers or OfferRules()
        self._statements = {dialect: self._statement(dialect, interactions) for dialect in ("sqlite", "postgresql")}

    @staticmethod
    def _statement(dialect: str, limit: int):
        open_tickets = (select(func.count(Ticket.id))
                        .where(Ticket.customer_id == Customer.id,
                               Ticket.status.in_([TicketStatus.OPEN, TicketStatus.PENDING]))
                        .correlate(Customer).scalar_subquery())
        held = aliased(ContactPoint)
        phones = (select(func.aggregate_strings(held.value, " "))
                  .where(held.customer_id == Customer.id, held.kind == "phone")
                  .correlate(Customer).scalar_subquery())
        marketing = (select(Consent.granted)
                     .where(Consent.customer_id == Customer.id, Consent.purpose == Purpose.MARKETING.value,
                            Consent.channel == "phone")
                     .order_by(Consent.at.desc(), Consent.id.desc()).limit(1)
                     .correlate(Customer).scalar_subquery())
        columns = [Customer.id, Customer.first_name, Customer.last_name, Customer.account_number, Customer.tier,
                   Customer.created_at, Customer.segment, Customer.lifetime_value, Customer.churn_risk,
                   open_tickets.label("open_tickets"), phones.label("phones"), marketing.label("marketing")]
        found = (select().select_from(ContactPoint).join(Customer, Customer.id == ContactPoint.customer_id)
                 .where(ContactPoint.kind == "phone", ContactPoint.value == bindparam("number")))
        if dialect == "postgresql":
            # LATERAL: the customer's last interactions by the (customer_id, arrived_at) index.
            recent = (select(Interaction.call_id, Interaction.arrived_at, Interaction.disposition, Interaction.notes,
                             Agent.display_name)
                      .outerjoin(Agent, Agent.id == Interaction.agent_id)
                      .where(Interaction.customer_id == Customer.id)
                      .order_by(Interaction.arrived_at.desc()).limit(limit).lateral("recent"))
            return (found.add_columns(*columns, recent.c.call_id, recent.c.arrived_at, recent.c.display_name,
                                      recent.c.disposition, recent.c.notes)
                    .outerjoin(recent, true()).order_by(recent.c.arrived_at.desc()))
        # SQLite has no LATERAL; it runs the correlated IN (... LIMIT) once, by the same index.
        recent_ids = (select(Interaction.id).where(Interaction.customer_id == Customer.id)
                      .order_by(Interaction.arrived_at.desc()).limit(limit).correlate(Customer))
        return (found.add_columns(*columns, Interaction.call_id, Interaction.arrived_at, Agent.display_name,
                                  Interaction.disposition, Interaction.notes)
                .outerjoin(Interaction, Interaction.id.in_(recent_ids))
                .outerjoin(Agent, Agent.id == Interaction.agent_id)
                .order_by(Interaction.arrived_at.desc()))

    async def lookup(self, caller_number: str, caller_name: str) -> ScreenPop:
        e164 = caller_id_to_e164(caller_number, self._region)
        if e164 is None:
            return ScreenPop(caller_number, caller_name, None)
        async with self._sessions() as session:
            statement = self._statements[session.bind.dialect.name]
            rows = (await session.execute(statement, {"number": e164})).all()
        if not rows:
            return ScreenPop(e164, caller_name, None)
        first = rows[0]
        past = [PastInteraction(r.call_id, _iso(r.arrived_at), r.display_name, r.disposition, r.notes)
                for r in rows if r.call_id is not None]
        phones = sorted(set((first.phones or "").split()) - {e164})
        offer = (self._offers.suggest(first.tier.value, first.segment, first.lifetime_value, first.churn_risk)
                 if first.marketing else None)
        summary = CustomerSummary(first.id, f"{first.first_name} {first.last_name}".strip(), first.account_number,
                                  first.tier.value, _iso(first.created_at), first.open_tickets, past,
                                  [e164, *phones], offer)
        return ScreenPop(e164, caller_name, summary)


def _iso(value: datetime) -> str:
    return value.isoformat(timespec="seconds")
