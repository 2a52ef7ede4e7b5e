"""Reading the store a page at a time, every read audited.

A Listing says how one kind of record is read: its table, its order, the
filters it accepts (a name and how it becomes a condition) and what one record
loads with it. Opening a record, or one customer's records, writes an audit
row naming the customer; a search writes one row per request naming its
filters (never their values: a searched e-mail address is personal data the
append-only audit log could not erase) and how many rows it showed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from contactcentre.crm.audit import Access
from contactcentre.crm.exceptions import Conflict, CustomerNotFound, NotFound
from contactcentre.crm.models import Base, Customer

Filter = Callable[[Any], ColumnElement[bool]]


@dataclass(frozen=True)
class Page:
    rows: list
    total: int  # rows that match, on every page
    limit: int
    offset: int


@dataclass(frozen=True)
class Listing:
    entity: str  # "ticket", as audit rows and errors name it
    model: type[Base]
    order: tuple  # newest first, then by id so pages never overlap
    filters: Mapping[str, Filter]
    detail: tuple = ()  # loader options for one record: a ticket's history, a call's legs

    def owner(self, row: Base) -> int | None:
        """The customer the row belongs to, if any."""
        return row.id if self.model is Customer else row.customer_id


async def search(sessions: async_sessionmaker, listing: Listing, filters: Mapping[str, object], limit: int,
                 offset: int, access: Access) -> Page:
    """The rows every filter lets through; one audit row for the whole search."""
    conditions = [listing.filters[name](value) for name, value in filters.items()]
    async with sessions() as session, session.begin():
        page = await _page(session, listing, conditions, limit, offset)
        customer_id = filters.get("customer_id")
        entity, entity_id = ("customer", customer_id) if customer_id is not None else (listing.entity, "*")
        named = f" by {', '.join(filters)}" if filters else ""
        await access.record(session, "search", entity, entity_id,
                            f"{listing.entity} search{named}; {len(page.rows)} of {page.total} shown")
    return page


async def of_customer(sessions: async_sessionmaker, listing: Listing, customer_id: int, limit: int, offset: int,
                      access: Access) -> Page:
    """A page of one customer's records (its tickets, its consents ...): a view of that customer's record."""
    async with sessions() as session, session.begin():
        await existing_customer(session, customer_id)
        page = await _page(session, listing, [listing.model.customer_id == customer_id], limit, offset)
        await access.record(session, "view", "customer", customer_id,
                            f"{len(page.rows)} of {page.total} {listing.entity.replace('_', ' ')} records shown")
    return page


async def one(sessions: async_sessionmaker, listing: Listing, record_id: int, access: Access) -> Base:
    async with sessions() as session, session.begin():
        row = await session.scalar(select(listing.model).options(*listing.detail).where(listing.model.id == record_id))
        if row is None:
            raise NotFound(listing.entity, record_id)
        await record_access(session, access, listing, row, "view")
    return row


async def record_access(session: AsyncSession, access: Access, listing: Listing, row: Base, action: str,
                        detail: str = "") -> None:
    """Audit a view or change of one row, under its customer when it has one (so an export lists it)."""
    what = f"{listing.entity} {row.id}" + (f" {detail}" if detail else "")
    owner = listing.owner(row)
    if owner is None:
        await access.record(session, action, listing.entity, row.id, detail)
    else:
        await access.record(session, action, "customer", owner, what)


async def existing_customer(session: AsyncSession, customer_id: int, *, for_change: bool = False) -> Customer:
    """The customer; `for_change` locks its row for the transaction and refuses an erased customer."""
    statement = select(Customer).where(Customer.id == customer_id)
    if for_change:
        # FOR UPDATE on PostgreSQL keeps a concurrent erasure or merge off the row (SQLite locks the file).
        statement = statement.with_for_update()
    customer = await session.scalar(statement)
    if customer is None:
        raise CustomerNotFound(customer_id)
    if for_change and customer.erased_at is not None:
        raise Conflict(f"customer {customer_id} has been erased", "customer-erased")
    return customer


async def _page(session: AsyncSession, listing: Listing, conditions: list, limit: int, offset: int) -> Page:
    model = listing.model
    total = await session.scalar(select(func.count()).select_from(model).where(*conditions))
    rows = (await session.scalars(select(model).where(*conditions).order_by(*listing.order)
                                  .limit(limit).offset(offset))).all()
    return Page(list(rows), total, limit, offset)
