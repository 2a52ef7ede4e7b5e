"""Customers and their contact points: searched, opened, created and changed, every step audited.

Phones are kept in E.164 and e-mail addresses in lower case (crm/fields.py), so
caller-ID lookup and search find them however they were written. A customer
has at most one primary contact point of each kind: making one primary demotes
the other in the same transaction, and a primary is never simply unset (make
another one primary instead), so a customer with phones always has a primary
phone for callbacks.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import selectinload

from contactcentre.crm.audit import Access
from contactcentre.crm.exceptions import Conflict, NotFound
from contactcentre.crm.fields import FieldError, email_address, phone_number
from contactcentre.crm.models import ContactPoint, Customer, ServiceTier
from contactcentre.crm.records import Listing, existing_customer, record_access

KINDS = ("phone", "email")
# What a customer's record holds that staff may set; the rest is the store's (erasure, lifetime value).
CUSTOMER_FIELDS = ("account_number", "first_name", "last_name", "tier", "segment", "preferred_language",
                   "churn_risk", "legal_hold")


def _holders(kind: str):
    # kind first: the unique (kind, value) index finds the contact point, the key its customer
    return lambda value: Customer.id.in_(
        select(ContactPoint.customer_id).where(ContactPoint.kind == kind, ContactPoint.value == value))


CUSTOMERS = Listing("customer", Customer, (Customer.last_name, Customer.first_name, Customer.id), {
    "first_name": lambda value: Customer.first_name == value,
    "last_name": lambda value: Customer.last_name == value,
    "account_number": lambda value: Customer.account_number == value,
    "tier": lambda value: Customer.tier == ServiceTier(value),
    "segment": lambda value: Customer.segment == value,
    "email": _holders("email"),
    "phone": _holders("phone"),
}, detail=(selectinload(Customer.contact_points),))

CONTACT_POINTS = Listing("contact_point", ContactPoint,
                         (ContactPoint.kind, ContactPoint.is_primary.desc(), ContactPoint.id), {})


@dataclass(frozen=True)
class NewContactPoint:
    kind: str  # one of KINDS
    value: str  # as written: normalised when stored
    verified: bool = False
    primary: bool | None = None  # None: primary if the customer has no primary of this kind yet


async def create_customer(sessions: async_sessionmaker, values: dict, points: list[NewContactPoint],
                          default_region: str, access: Access) -> Customer:
    """A new customer with its contact points; the first of each kind is primary unless one is marked."""
    if not points:
        raise FieldError("contact_points", "a customer needs at least one phone number or an e-mail address")
    points = _normalised(points, default_region)
    async with sessions() as session, session.begin():
        account = values["account_number"]
        if await session.scalar(select(Customer.id).where(Customer.account_number == account)) is not None:
            raise Conflict(f"account_number {account} is already in the store", "account-number-taken")
        for point in points:
            await _check_free(session, point.kind, point.value)
        customer = Customer(**values)
        customer.created_at = customer.created_at or datetime.now(UTC)
        session.add(customer)
        await _flush(session)
        session.add_all([ContactPoint(customer_id=customer.id, kind=p.kind, value=p.value, verified=p.verified,
                                      is_primary=p.primary) for p in points])
        await _flush(session)
        # ids only: an account number or a name in the append-only audit log would outlive an erasure
        await access.record(session, "create", "customer", customer.id,
                            f"with {len(points)} contact point{'s' if len(points) > 1 else ''}")
        return await _with_points(session, customer.id)


def _normalised(points: list[NewContactPoint], default_region: str) -> list[NewContactPoint]:
    """Values as stored, each given once, and exactly one primary of each kind given."""
    result: list[NewContactPoint] = []
    for n, point in enumerate(points):
        value = contact_value(point.kind, point.value, default_region, f"contact_points[{n}].value")
        if any((p.kind, p.value) == (point.kind, value) for p in result):
            raise FieldError(f"contact_points[{n}].value", f"{value} is given twice")
        result.append(replace(point, value=value))
    primaries = {}
    for kind in KINDS:
        of_kind = [p for p in result if p.kind == kind]
        marked = [p for p in of_kind if p.primary]
        if len(marked) > 1:
            raise FieldError("contact_points", f"only one {kind} can be primary")
        if of_kind:
            primaries[kind] = marked[0] if marked else of_kind[0]
    return [replace(p, primary=primaries[p.kind] is p) for p in result]


def contact_value(kind: str, raw: str, default_region: str, field: str) -> str:
    """The value as the store keeps it: phones in E.164, e-mail addresses in lower case."""
    return phone_number(raw, default_region, field) if kind == "phone" else email_address(raw, field)


async def update_customer(sessions: async_sessionmaker, customer_id: int, changes: dict,
                          access: Access) -> Customer:
    """Set the fields in `changes` (names from CUSTOMER_FIELDS); the audit row names those that changed."""
    async with sessions() as session, session.begin():
        customer = await existing_customer(session, customer_id, for_change=True)
        changed = [name for name, value in changes.items() if getattr(customer, name) != value]
        account = changes.get("account_number")
        if "account_number" in changed and await session.scalar(
                select(Customer.id).where(Customer.account_number == account)) is not None:
            raise Conflict(f"account_number {account} is already in the store", "account-number-taken")
        for name in changed:
            setattr(customer, name, changes[name])
        await _flush(session)
        await access.record(session, "change", "customer", customer_id, ", ".join(changed) or "nothing changed")
        return await _with_points(session, customer_id)


async def add_contact_point(sessions: async_sessionmaker, customer_id: int, new: NewContactPoint,
                            default_region: str, access: Access) -> ContactPoint:
    value = contact_value(new.kind, new.value, default_region, "value")
    async with sessions() as session, session.begin():
        await existing_customer(session, customer_id, for_change=True)
        await _check_free(session, new.kind, value, customer_id)
        current = await session.scalar(select(ContactPoint.id).where(
            ContactPoint.customer_id == customer_id, ContactPoint.kind == new.kind, ContactPoint.is_primary))
        primary = current is None if new.primary is None else new.primary
        if primary and current is not None:
            await _demote(session, customer_id, new.kind)
        point = ContactPoint(customer_id=customer_id, kind=new.kind, value=value, verified=new.verified,
                             is_primary=primary)
        session.add(point)
        await _flush(session)
        await record_access(session, access, CONTACT_POINTS, point, "create", f"({new.kind})")
    return point


async def change_contact_point(sessions: async_sessionmaker, point_id: int, changes: dict, default_region: str,
                               access: Access) -> ContactPoint:
    """Change `value`, `verified` or `primary`; a new value is unverified unless `verified` comes with it."""
    async with sessions() as session, session.begin():
        point = await session.scalar(select(ContactPoint).where(ContactPoint.id == point_id).with_for_update())
        if point is None:
            raise NotFound("contact_point", point_id)
        await existing_customer(session, point.customer_id, for_change=True)
        changed = []
        if "value" in changes:
            value = contact_value(point.kind, changes["value"], default_region, "value")
            if value != point.value:
                await _check_free(session, point.kind, value, point.customer_id)
                point.value, point.verified = value, False
                changed.append("value")
        if "verified" in changes and changes["verified"] != point.verified:
            point.verified = changes["verified"]
            changed.append("verified")
        if changes.get("primary") is False and point.is_primary:
            raise FieldError("primary", f"this is the customer's primary {point.kind}: "
                                        f"make another {point.kind} primary instead")
        if changes.get("primary") and not point.is_primary:
            await _demote(session, point.customer_id, point.kind)
            point.is_primary = True
            changed.append("primary")
        await _flush(session)
        await record_access(session, access, CONTACT_POINTS, point, "change", ", ".join(changed) or "nothing changed")
    return point


async def _check_free(session: AsyncSession, kind: str, value: str, customer_id: int | None = None) -> None:
    owner = await session.scalar(select(ContactPoint.customer_id).where(
        ContactPoint.kind == kind, ContactPoint.value == value))
    if owner is None:
        return
    if owner == customer_id:
        raise Conflict(f"{kind} {value} is already one of this customer's contact points", "contact-point-taken")
    raise Conflict(f"{kind} {value} already belongs to customer {owner}", "contact-point-taken")


async def _demote(session: AsyncSession, customer_id: int, kind: str) -> None:
    # Before the new primary is written: the unique index allows one primary per customer and kind.
    await session.execute(update(ContactPoint).where(
        ContactPoint.customer_id == customer_id, ContactPoint.kind == kind, ContactPoint.is_primary)
        .values(is_primary=False).execution_options(synchronize_session=False))


async def _flush(session: AsyncSession) -> None:
    """Flush; a unique value another request stored since our check is a conflict, not a crash."""
    try:
        await session.flush()
    except IntegrityError:
        raise Conflict("another change to the same values was stored at the same moment; try again",
                       "conflict") from None


async def _with_points(session: AsyncSession, customer_id: int) -> Customer:
    return await session.scalar(select(Customer).options(selectinload(Customer.contact_points))
                                .where(Customer.id == customer_id).execution_options(populate_existing=True))
