"""Consent and do-not-call: may we contact this customer, for this purpose, on this channel?

No consent row means no consent: a customer is only called, surveyed or
offered marketing after saying yes, and the latest answer wins.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from contactcentre.crm.models import Consent, ContactPoint, Customer, DoNotCall


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
