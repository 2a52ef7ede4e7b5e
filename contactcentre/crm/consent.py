"""Consent and do-not-call: may we contact this customer, for this purpose, on this channel?

No consent row means no consent: a customer is only called, surveyed or
offered marketing after saying yes, and the latest answer wins. A grant or a
withdrawal is a new row, never an edit of an old one, so the record of what
the customer said and when stays whole.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from contactcentre.crm.audit import Access
from contactcentre.crm.models import Consent, ContactPoint, Customer, DoNotCall
from contactcentre.crm.records import Listing, existing_customer, record_access

PURPOSES = ("marketing", "survey", "callback", "recording")
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


async def consent_state(session: AsyncSession, customer_id: int, purpose: str, channel: str) -> bool:
    """Whether the customer's latest answer for `purpose` on `channel` was yes; no answer is no."""
    granted = await session.scalar(
        select(Consent.granted)
        .where(Consent.customer_id == customer_id, Consent.purpose == purpose, Consent.channel == channel)
        .order_by(Consent.at.desc(), Consent.id.desc())
        .limit(1))
    return bool(granted)


async def check_dial(session: AsyncSession, number: str, purpose: str) -> None:
    """Raise DialRefused unless `number` (E.164) may be called for `purpose` (callback, survey, marketing ...).

    A number on the do-not-call list is refused whoever holds it. Otherwise the
    number must belong to a customer whose latest phone consent for `purpose`
    is a yes; a number no customer holds has nobody who could have consented.
    """
    barred = await session.scalar(select(DoNotCall).where(DoNotCall.number == number))
    if barred is not None:
        raise DialRefused(number, f"on the do-not-call list ({barred.reason})")
    customer = await session.scalar(
        select(Customer).join(ContactPoint).where(ContactPoint.kind == "phone", ContactPoint.value == number))
    if customer is None:
        raise DialRefused(number, f"no customer holds this number, so nobody consented to {purpose} calls")
    if not await consent_state(session, customer.id, purpose, "phone"):
        raise DialRefused(number, f"customer {customer.account_number} has not consented to {purpose} calls by phone")


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
