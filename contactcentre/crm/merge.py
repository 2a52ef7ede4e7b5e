"""Duplicate customers: proposing pairs and merging one into the other.

The same person often ends up twice in the store: imported from two systems,
or added again by an agent under a new number. Contact points are unique, so
two records never share a phone or an e-mail; what they share is the person.

The rule. Two customers are proposed for merging when their names are the same
after normalising (accents dropped, case folded, spaces, hyphens and
apostrophes removed: "Zoë O'Brien" = "ZOE OBRIEN" = "zoe o brien") and they
also share one of:

- a postcode (normalised the same way: "SW1A 1AA" = "sw1a1aa"), or
- the local part of an e-mail address, ignoring dots and a "+tag"
  ("jane.doe+shop@gmail.com" and "janedoe@work.example").

A name alone is not enough: a large store has many John Smiths. Erased
customers are never proposed. Customers are bucketed by these keys in one
pass over the rows (a hash join), so the cost grows with the number of
customers, never with its square; only customers in the same bucket are paired.

A merge moves every row of the merged customer (contact points, addresses,
transactions, interactions, tickets, survey responses, consents, callbacks) to the kept
one, deletes the now-empty merged customer and writes an audit row for each of
the two, all in one transaction. The audit rows name the merged account, so
the history of where the records came from stays readable.
"""

from __future__ import annotations

import itertools
import re
import unicodedata
from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from contactcentre.crm.audit import AuditTrail
from contactcentre.crm.models import (
    Address,
    Callback,
    Consent,
    ContactPoint,
    Customer,
    Interaction,
    SurveyResponse,
    Ticket,
    Transaction,
)

# Every table whose rows belong to a customer; a merge moves them all.
OWNED = (Address, Transaction, Interaction, Ticket, SurveyResponse, Consent, Callback)

NOT_ALNUM = re.compile(r"[^0-9a-z]+")


class MergeError(ValueError):
    """The merge was refused; nothing was changed."""


@dataclass(frozen=True)
class DuplicatePair:
    keep_id: int  # the older record, proposed to keep
    merge_id: int
    reason: str


def normalise(text: str) -> str:
    """'Zoë  O'Brien' -> 'zoeobrien': what is left once accents, case and punctuation are gone."""
    decomposed = unicodedata.normalize("NFKD", text)
    bare = "".join(c for c in decomposed if not unicodedata.combining(c))
    return NOT_ALNUM.sub("", bare.casefold())


def email_local_part(address: str) -> str:
    local = address.split("@", 1)[0].split("+", 1)[0]
    return normalise(local)


async def find_duplicates(sessions: async_sessionmaker) -> list[DuplicatePair]:
    """Pairs of customers that are probably the same person, with why."""
    buckets: dict[tuple[str, str, str], set[int]] = defaultdict(set)
    live = Customer.erased_at.is_(None)
    async with sessions() as session:
        by_postcode = select(Customer.id, Customer.first_name, Customer.last_name, Address.postcode).join(
            Address, Address.customer_id == Customer.id).where(live, Address.postcode.is_not(None))
        async for customer_id, first, last, postcode in await session.stream(by_postcode):
            buckets[("postcode", _name_key(first, last), normalise(postcode))].add(customer_id)
        by_email = select(Customer.id, Customer.first_name, Customer.last_name, ContactPoint.value).join(
            ContactPoint, ContactPoint.customer_id == Customer.id).where(live, ContactPoint.kind == "email")
        async for customer_id, first, last, email in await session.stream(by_email):
            buckets[("e-mail name", _name_key(first, last), email_local_part(email))].add(customer_id)
    return _pairs(buckets)


def _name_key(first: str, last: str) -> str:
    return f"{normalise(first)} {normalise(last)}"


def _pairs(buckets: dict[tuple[str, str, str], set[int]]) -> list[DuplicatePair]:
    reasons: dict[tuple[int, int], list[str]] = defaultdict(list)
    for (shared, name, value), ids in buckets.items():
        if not name.strip() or not value:
            continue  # an empty key matches everyone with the same gap, not the same person
        for pair in itertools.combinations(sorted(ids), 2):
            reasons[pair].append(f"same name and {shared} {value!r}")
    return [DuplicatePair(keep, other, "; ".join(why)) for (keep, other), why in sorted(reasons.items())]


async def merge(sessions: async_sessionmaker, keep_id: int, merge_id: int, actor_id: int | None,
                reason: str) -> None:
    """Move everything of `merge_id` to `keep_id`, delete `merge_id`, and audit both; MergeError if refused."""
    if keep_id == merge_id:
        raise MergeError(f"cannot merge customer {keep_id} into itself")
    if not reason.strip():
        raise MergeError("a merge needs a reason")
    async with sessions() as session, session.begin():
        keep, merged = await _both(session, keep_id, merge_id)
        await _move_contact_points(session, keep_id, merge_id)
        for model in OWNED:
            await session.execute(update(model).where(model.customer_id == merge_id).values(customer_id=keep_id))
        keep.lifetime_value += merged.lifetime_value
        keep.legal_hold = keep.legal_hold or merged.legal_hold  # a hold on either record must survive
        keep.churn_risk = keep.churn_risk or merged.churn_risk
        await session.flush()
        await session.execute(delete(Customer).where(Customer.id == merge_id))
        what = (f"customer {merge_id} ({merged.account_number}, {merged.name}) merged into {keep_id} "
                f"({keep.account_number}): {reason}")
        await AuditTrail.write(session, actor_id, "merge", "customer", str(keep_id), what)
        await AuditTrail.write(session, actor_id, "merge", "customer", str(merge_id), what)


async def _both(session: AsyncSession, keep_id: int, merge_id: int) -> tuple[Customer, Customer]:
    # FOR UPDATE on PostgreSQL keeps a concurrent merge or erasure off these two rows (SQLite locks the file).
    found = {c.id: c for c in await session.scalars(
        select(Customer).where(Customer.id.in_((keep_id, merge_id))).with_for_update())}
    for customer_id in (keep_id, merge_id):
        if customer_id not in found:
            raise MergeError(f"no customer with id {customer_id}")
        if found[customer_id].erased_at is not None:
            raise MergeError(f"customer {customer_id} has been erased")
    return found[keep_id], found[merge_id]


async def _move_contact_points(session: AsyncSession, keep_id: int, merge_id: int) -> None:
    # Only one primary per customer and kind: the kept customer's primaries stay primary.
    kept_primary = select(ContactPoint.kind).where(ContactPoint.customer_id == keep_id, ContactPoint.is_primary)
    await session.execute(update(ContactPoint).where(
        ContactPoint.customer_id == merge_id, ContactPoint.kind.in_(kept_primary)).values(is_primary=False))
    await session.execute(update(ContactPoint).where(ContactPoint.customer_id == merge_id)
                          .values(customer_id=keep_id))
