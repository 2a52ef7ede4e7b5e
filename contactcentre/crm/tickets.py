"""Tickets: opened for a customer, worked through their statuses, every change kept in their history.

Each change of status, priority or owner, and each note, is one TicketEvent
with the old and the new value, written with the ticket in one transaction
and audited under the ticket's customer. A closed ticket is final: a new
problem is a new ticket, so the closed one's history and SLA figures stay as
they were.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import selectinload

from contactcentre.crm.audit import Access
from contactcentre.crm.exceptions import Conflict, NotFound, Refused
from contactcentre.crm.fields import FieldError
from contactcentre.crm.models import Agent, Ticket, TicketEvent, TicketStatus
from contactcentre.crm.records import Listing, existing_customer, record_access

PRIORITIES = ("low", "normal", "high", "urgent")
STILL_OPEN = (TicketStatus.OPEN, TicketStatus.PENDING)
# Body fields of a new ticket, and of a change; `note` adds a line to the history.
NEW_TICKET_FIELDS = ("subject", "priority", "owner_id", "sla_policy", "first_response_due", "resolve_due")
TICKET_CHANGES = ("status", "priority", "owner_id", "note")


def _overdue(wanted: bool):
    now = datetime.now(UTC)
    late = and_(Ticket.status.in_(STILL_OPEN), Ticket.resolve_due < now)
    # spelled out rather than NOT(late): a ticket without a due date is not late, and NOT(NULL) is NULL
    on_time = or_(Ticket.status.not_in(STILL_OPEN), Ticket.resolve_due.is_(None), Ticket.resolve_due >= now)
    return late if wanted else on_time


TICKETS = Listing("ticket", Ticket, (Ticket.created_at.desc(), Ticket.id.desc()), {
    "customer_id": lambda value: Ticket.customer_id == value,
    "status": lambda value: Ticket.status == TicketStatus(value),
    "priority": lambda value: Ticket.priority == value,
    "owner_id": lambda value: Ticket.owner_id == value,
    "overdue": _overdue,
}, detail=(selectinload(Ticket.history),))


async def create_ticket(sessions: async_sessionmaker, customer_id: int, fields: dict, access: Access) -> Ticket:
    """A new open ticket (fields named in NEW_TICKET_FIELDS); its history starts with the status `open`."""
    async with sessions() as session, session.begin():
        await existing_customer(session, customer_id, for_change=True)
        if fields.get("owner_id") is not None:
            await _check_agent(session, fields["owner_id"])
        now = datetime.now(UTC)
        ticket = Ticket(customer_id=customer_id, status=TicketStatus.OPEN, created_at=now, updated_at=now, **fields)
        session.add(ticket)
        await session.flush()
        session.add(TicketEvent(ticket_id=ticket.id, at=now, actor_id=access.actor_id, field="status",
                                old_value=None, new_value=TicketStatus.OPEN.value))
        await record_access(session, access, TICKETS, ticket, "create")
        return await _with_history(session, ticket.id)


async def change_ticket(sessions: async_sessionmaker, ticket_id: int, changes: dict, access: Access, *,
                        any_owner: bool) -> Ticket:
    """Apply `changes` (names in TICKET_CHANGES), one history event each; without `any_owner` the user may
    change only a ticket that is theirs or nobody's."""
    async with sessions() as session, session.begin():
        ticket = await session.scalar(select(Ticket).where(Ticket.id == ticket_id).with_for_update())
        if ticket is None:
            raise NotFound("ticket", ticket_id)
        if not any_owner and ticket.owner_id not in (None, access.actor_id):
            raise Refused(f"ticket {ticket_id} belongs to agent {ticket.owner_id}", "not-your-ticket")
        if ticket.status is TicketStatus.CLOSED:
            raise Conflict(f"ticket {ticket_id} is closed; open a new ticket instead", "ticket-closed")
        await existing_customer(session, ticket.customer_id, for_change=True)
        if changes.get("owner_id") is not None:
            await _check_agent(session, changes["owner_id"])
        events = _events(ticket, changes)
        now = datetime.now(UTC)
        for field, old, new in events:
            session.add(TicketEvent(ticket_id=ticket_id, at=now, actor_id=access.actor_id, field=field,
                                    old_value=old, new_value=new))
        _apply(ticket, changes, now if events else None)
        await record_access(session, access, TICKETS, ticket, "change",
                            ", ".join(field for field, _, _ in events) or "nothing changed")
        return await _with_history(session, ticket_id)


def _events(ticket: Ticket, changes: dict) -> list[tuple[str, str | None, str | None]]:
    """(field, old, new) for each value that differs; the history keeps codes and agent ids as text."""
    events = []
    if "status" in changes and TicketStatus(changes["status"]) is not ticket.status:
        events.append(("status", ticket.status.value, changes["status"]))
    if "priority" in changes and changes["priority"] != ticket.priority:
        events.append(("priority", ticket.priority, changes["priority"]))
    if "owner_id" in changes and changes["owner_id"] != ticket.owner_id:
        events.append(("owner", _text(ticket.owner_id), _text(changes["owner_id"])))
    if changes.get("note"):
        events.append(("note", None, changes["note"]))
    return events


def _apply(ticket: Ticket, changes: dict, now: datetime | None) -> None:
    if "status" in changes:
        ticket.status = TicketStatus(changes["status"])
        if ticket.status is TicketStatus.CLOSED:
            ticket.closed_at = now
    if "priority" in changes:
        ticket.priority = changes["priority"]
    if "owner_id" in changes:
        ticket.owner_id = changes["owner_id"]
    if now is not None:
        ticket.updated_at = now


def _text(value: int | None) -> str | None:
    return None if value is None else str(value)


async def _check_agent(session: AsyncSession, agent_id: int) -> None:
    if await session.scalar(select(Agent.id).where(Agent.id == agent_id)) is None:
        raise FieldError("owner_id", f"no agent {agent_id}")


async def _with_history(session: AsyncSession, ticket_id: int) -> Ticket:
    return await session.scalar(select(Ticket).options(selectinload(Ticket.history))
                                .where(Ticket.id == ticket_id).execution_options(populate_existing=True))
