"""Consent and do-not-call: may we contact this customer, for this purpose, on this channel?

Purposes, and the rule each follows (docs/OUTBOUND.md says why):

- `marketing`, `survey`: opt-in. No consent row means no; the customer's
  latest answer for the purpose on the channel must be a yes.
- `service` (an agent's call about the customer's own open matter) and
  `callback` (a call back the customer asked for or was promised):
  legitimate interest. No yes is needed, but a no is honoured: a customer
  whose latest answer for the purpose is a withdrawal has objected, and is not
  called. A service call also needs an open matter: an open or pending ticket,
  or a contact with the customer in the last few days; a callback is its own
  matter.

Every outbound call, whatever its purpose, goes only to a number a customer
holds, and never to a number on the do-not-call list.

A grant or a withdrawal is a new row, never an edit of an old one, so the
record of what the customer said and when stays whole.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from sqlalchemy import exists, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from contactcentre.crm.audit import Access
from contactcentre.crm.models import Consent, ContactPoint, Customer, DoNotCall, Interaction, Ticket, TicketStatus
from contactcentre.crm.records import Listing, existing_customer, record_access


class Purpose(StrEnum):
    SERVICE = "service"
    CALLBACK = "callback"
    SURVEY = "survey"
    MARKETING = "marketing"


OPT_IN = frozenset({Purpose.SURVEY, Purpose.MARKETING})
RECENT_CONTACT = timedelta(days=7)  # a contact this recent is an open matter for a service call
# What a consent row may be about: the purposes calls are made for, and the recording of calls.
PURPOSES = (*(p.value for p in Purpose), "recording")
CHANNELS = ("phone", "email", "sms")

CONSENTS = Listing("consent", Consent, (Consent.at.desc(), Consent.id.desc()), {
    "customer_id": lambda value: Consent.customer_id == value,
    "purpose": lambda value: Consent.purpose == value,
    "channel": lambda value: Consent.channel == value,
    "granted": lambda value: Consent.granted == value,
})


class DialRefused(Exception):
    """A number that may not be dialled, and why."""

    status = 403
    error_id = "dial-refused"

    def __init__(self, number: str, reason: str):
        super().__init__(f"{number} may not be dialled: {reason}")
        self.number = number
        self.reason = reason


@dataclass(frozen=True, slots=True)
class DialPermit:
    """A number that may be dialled, and whose it is."""

    number: str
    customer_id: int
    account_number: str
    purpose: Purpose


async def consent_state(session: AsyncSession, customer_id: int, purpose: str, channel: str) -> bool:
    """Whether the customer's latest answer for `purpose` on `channel` was yes; no answer is no."""
    latest = await _latest_answer(session, customer_id, purpose, channel)
    return latest is not None and latest.granted


async def check_dial(session: AsyncSession, number: str, purpose: str, *, customer_id: int | None = None,
                     recent_contact: timedelta = RECENT_CONTACT, now: datetime | None = None) -> DialPermit:
    """Raise DialRefused unless `number` (E.164) may be called for `purpose`; `customer_id`, when
    given, is the customer the call is about, and the number must be one of theirs."""
    purpose = _purpose(number, purpose)
    barred = await session.scalar(select(DoNotCall).where(DoNotCall.number == number))
    if barred is not None:
        raise DialRefused(number, f"on the do-not-call list ({barred.reason})")
    holder = (await session.execute(
        select(Customer.id, Customer.account_number).join(ContactPoint)
        .where(ContactPoint.kind == "phone", ContactPoint.value == number))).first()
    if holder is None:
        why = (f"so nobody consented to {purpose} calls" if purpose in OPT_IN
               else f"and {purpose} calls go only to a customer's own number")
        raise DialRefused(number, f"no customer holds this number, {why}")
    if customer_id is not None and holder.id != customer_id:
        raise DialRefused(number, "it is not one of this customer's numbers")
    latest = await _latest_answer(session, holder.id, purpose, "phone")
    if purpose in OPT_IN and not (latest and latest.granted):
        raise DialRefused(number, f"customer {holder.account_number} has not consented to {purpose} calls by phone")
    if latest is not None and not latest.granted:
        raise DialRefused(number, f"customer {holder.account_number} objected to {purpose} calls by phone "
                                  f"on {latest.at.date().isoformat()} ({latest.source})")
    if purpose is Purpose.SERVICE and not await _open_matter(session, holder.id, (now or datetime.now(UTC))
                                                             - recent_contact):
        raise DialRefused(number, f"customer {holder.account_number} has no open ticket and no contact in the "
                                  f"last {recent_contact.days} days: a service call needs an open matter")
    return DialPermit(number, holder.id, holder.account_number, purpose)


def _purpose(number: str, purpose: str) -> Purpose:
    try:
        return Purpose(purpose)
    except ValueError:
        raise DialRefused(number, f"{purpose!r} is not a purpose calls are made for "
                                  f"({', '.join(p.value for p in Purpose)})") from None


async def _latest_answer(session: AsyncSession, customer_id: int, purpose: str, channel: str):
    return (await session.execute(
        select(Consent.granted, Consent.at, Consent.source)
        .where(Consent.customer_id == customer_id, Consent.purpose == purpose, Consent.channel == channel)
        .order_by(Consent.at.desc(), Consent.id.desc())
        .limit(1))).first()


async def _open_matter(session: AsyncSession, customer_id: int, since: datetime) -> bool:
    open_ticket = exists().where(Ticket.customer_id == customer_id,
                                 Ticket.status.in_([TicketStatus.OPEN, TicketStatus.PENDING]))
    recent = exists().where(Interaction.customer_id == customer_id, Interaction.arrived_at >= since)
    return bool(await session.scalar(select(open_ticket | recent)))


async def record_consent(sessions: async_sessionmaker, customer_id: int, purpose: str, channel: str, granted: bool,
                         source: str, access: Access) -> Consent:
    """The customer's answer for `purpose` on `channel`, as of now; it is the one that counts from now on."""
    async with sessions() as session, session.begin():
        await existing_customer(session, customer_id, for_change=True)
        consent = Consent(customer_id=customer_id, purpose=purpose, channel=channel, granted=granted,
                          at=datetime.now(UTC), source=source)
        session.add(consent)
        await session.flush()
        await record_access(session, access, CONSENTS, consent, "create",
                            f"{purpose} by {channel} {'granted' if granted else 'withdrawn'}")
    return consent
