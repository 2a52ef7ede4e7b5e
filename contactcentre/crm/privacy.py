"""A customer's rights over their data: access (export) and erasure.

Export gathers every row held about one customer into a JSON-ready bundle.
Erasure removes or overwrites every personal value in one transaction but
keeps the rows reports count (interactions with their times, queue, agent and
disposition; survey scores; transactions), so the day's figures do not move.
Both write an audit entry; a legal hold refuses erasure and changes nothing.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from sqlalchemy import delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import selectinload

from contactcentre.crm.audit import AuditTrail
from contactcentre.crm.exceptions import Conflict, CustomerNotFound
from contactcentre.crm.models import (
    MAX_ID,
    Address,
    AuditLog,
    Callback,
    Consent,
    ContactPoint,
    Customer,
    Interaction,
    SurveyResponse,
    Ticket,
    TicketEvent,
    Transaction,
    row_as_json,
)

log = logging.getLogger(__name__)

EXPORT_FORMAT = "contactcentre.customer-export/1"
ERASED = "erased"  # the fixed token that replaces names and free text
# Ticket history fields whose values are codes, not anything the customer said or is.
CODED_TICKET_FIELDS = ("status", "priority", "owner", "sla_policy")


class ErasureRefused(Conflict):
    error_id = "legal-hold"


async def find_customer_id(sessions: async_sessionmaker, ref: str) -> int:
    """The id of the customer `ref` names: an id, else an account number."""
    async with sessions() as session:
        customer_id = None
        if ref.isdigit() and int(ref) <= MAX_ID:
            customer_id = await session.scalar(select(Customer.id).where(Customer.id == int(ref)))
        if customer_id is None:
            customer_id = await session.scalar(select(Customer.id).where(Customer.account_number == ref))
    if customer_id is None:
        raise CustomerNotFound(ref)
    return customer_id


async def export_customer(sessions: async_sessionmaker, customer_id: int, actor_id: int | None) -> dict:
    """Everything held about the customer, machine-readable; the export itself is audited first, so it is in it."""
    async with sessions() as session, session.begin():
        customer = await session.get(Customer, customer_id)
        if customer is None:
            raise CustomerNotFound(customer_id)
        await _audit(session, actor_id, "export", customer_id, "right of access: customer data exported")
        bundle = {"format": EXPORT_FORMAT, "exported_at": datetime.now(UTC).isoformat(),
                  "customer": row_as_json(customer), **await _held_about(session, customer_id)}
    log.info("customer exported", extra={"customer_id": customer_id, "actor_id": actor_id})
    return bundle


async def _held_about(session: AsyncSession, customer_id: int) -> dict[str, list[dict]]:
    async def rows(statement) -> list[dict]:
        return [row_as_json(row) for row in (await session.scalars(statement)).all()]

    interactions = (await session.scalars(
        select(Interaction).options(selectinload(Interaction.legs))
        .where(Interaction.customer_id == customer_id).order_by(Interaction.arrived_at))).all()
    tickets = (await session.scalars(
        select(Ticket).options(selectinload(Ticket.history))
        .where(Ticket.customer_id == customer_id).order_by(Ticket.created_at))).all()
    return {
        "contact_points": await rows(select(ContactPoint).where(ContactPoint.customer_id == customer_id)
                                     .order_by(ContactPoint.id)),
        "addresses": await rows(select(Address).where(Address.customer_id == customer_id).order_by(Address.id)),
        "transactions": await rows(select(Transaction).where(Transaction.customer_id == customer_id)
                                   .order_by(Transaction.occurred_at)),
        "interactions": [{**row_as_json(i), "legs": [row_as_json(leg) for leg in i.legs]} for i in interactions],
        "tickets": [{**row_as_json(t), "history": [row_as_json(e) for e in t.history]} for t in tickets],
        "survey_responses": await rows(select(SurveyResponse).where(SurveyResponse.customer_id == customer_id)
                                       .order_by(SurveyResponse.answered_at)),
        "consents": await rows(select(Consent).where(Consent.customer_id == customer_id).order_by(Consent.at)),
        "callbacks": await rows(select(Callback).where(Callback.customer_id == customer_id)
                                .order_by(Callback.created_at)),
        "audit": await rows(select(AuditLog).where(AuditLog.entity == "customer",
                                                   AuditLog.entity_id == str(customer_id)).order_by(AuditLog.at)),
    }


async def erase_customer(sessions: async_sessionmaker, customer_id: int, actor_id: int | None,
                         reason: str) -> datetime:
    """Erase the customer's personal data in one transaction; return when. Raise ErasureRefused under a legal hold."""
    async with sessions() as session, session.begin():
        customer = await session.scalar(select(Customer).where(Customer.id == customer_id).with_for_update())
        if customer is None:
            raise CustomerNotFound(customer_id)
        if customer.legal_hold:
            log.warning("erasure refused: legal hold", extra={"customer_id": customer_id, "actor_id": actor_id})
            raise ErasureRefused(f"customer {customer_id} is under a legal hold: their data may not be erased")
        phones = (await session.scalars(select(ContactPoint.value).where(
            ContactPoint.customer_id == customer_id, ContactPoint.kind == "phone"))).all()
        erased_at = datetime.now(UTC)
        customer.first_name, customer.last_name = ERASED, ""
        customer.account_number = f"{ERASED}-{customer_id}"
        customer.erased_at = erased_at
        await _erase_related(session, customer_id, phones)
        await _audit(session, actor_id, "erase", customer_id, reason)
    log.info("customer erased", extra={"customer_id": customer_id, "actor_id": actor_id})
    return erased_at


async def _erase_related(session: AsyncSession, customer_id: int, phones: list[str]) -> None:
    await session.execute(delete(ContactPoint).where(ContactPoint.customer_id == customer_id))
    await session.execute(delete(Address).where(Address.customer_id == customer_id))
    # A callback is a number and a note about the customer, and no report counts it: it goes,
    # and with it any try still due. Each try that dialled stays as an (anonymised) interaction.
    await session.execute(delete(Callback).where(Callback.customer_id == customer_id))
    # Consent rows hold no personal value and stay as the record of what was agreed or withdrawn.
    # Calls keep their times, queue, agent and disposition for the reports; what identifies the
    # caller or records what was said goes. The timeline goes too: its channel names carry numbers.
    await session.execute(
        update(Interaction)
        .where(or_(Interaction.customer_id == customer_id, Interaction.caller_number.in_(phones)))
        .values(caller_number="", notes=None, recording_ref=None, timeline=None)
        .execution_options(synchronize_session=False))
    tickets = select(Ticket.id).where(Ticket.customer_id == customer_id).scalar_subquery()
    await session.execute(update(Ticket).where(Ticket.customer_id == customer_id).values(subject=ERASED))
    await session.execute(
        update(TicketEvent).where(TicketEvent.ticket_id.in_(tickets), TicketEvent.field.not_in(CODED_TICKET_FIELDS))
        .values(old_value=None, new_value=None))
    await session.execute(update(SurveyResponse).where(SurveyResponse.customer_id == customer_id).values(comment=None))


async def _audit(session: AsyncSession, actor_id: int | None, action: str, customer_id: int, reason: str) -> None:
    await AuditTrail.write(session, actor_id, action, "customer", str(customer_id), reason)
