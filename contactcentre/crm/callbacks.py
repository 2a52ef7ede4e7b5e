"""Callbacks in the store: scheduled after a consent check, claimed when due, each try recorded.

A callback is checked twice: when it is scheduled and again when it is due,
because the customer may object or a number may go on the do-not-call list
in between. A try that did not reach the customer (no answer, busy, the
agent's phone not picked up, the PBX failing) is tried again `retry_after`
later, up to `max_attempts` tries; an answered try ends it; a refusal ends it
too, with the reason kept.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import async_sessionmaker

from contactcentre.crm.audit import Access
from contactcentre.crm.consent import RECENT_CONTACT, DialPermit, Purpose, check_dial
from contactcentre.crm.fields import FieldError
from contactcentre.crm.models import Callback, CallbackStatus
from contactcentre.crm.records import Listing, record_access

log = logging.getLogger(__name__)

MAX_NOTE = 1000
MAX_AHEAD = timedelta(days=366)  # a callback is a promise for the coming days, not a calendar
ANSWERED, REFUSED = "answered", "refused"

CALLBACKS = Listing("callback", Callback, (Callback.due_at, Callback.id), {  # soonest due first
    "customer_id": lambda value: Callback.customer_id == value,
    "status": lambda value: Callback.status == CallbackStatus(value),
})


@dataclass(frozen=True, slots=True)
class DueCallback:
    id: int
    customer_id: int
    number: str
    note: str | None


class CallbackStore:
    def __init__(self, sessions: async_sessionmaker, max_attempts: int, retry_after: timedelta,
                 recent_contact: timedelta = RECENT_CONTACT):
        self._sessions = sessions
        self.max_attempts = max_attempts
        self.retry_after = retry_after
        self._recent_contact = recent_contact

    async def schedule(self, number: str, due_at: datetime, note: str | None, access: Access, *,
                       customer_id: int | None = None, now: datetime | None = None) -> Callback:
        """Check consent and do-not-call for `number` (E.164), then store the callback (audited, with
        `access` as who asked). Raises DialRefused, or FieldError naming what is wrong with `due_at`
        or `note`. `due_at` is aware; a time already past means as soon as an agent is free."""
        now = now or datetime.now(UTC)
        if due_at > now + MAX_AHEAD:
            raise FieldError("due_at", f"at most {MAX_AHEAD.days} days ahead")
        if note is not None and len(note) > MAX_NOTE:
            raise FieldError("note", f"at most {MAX_NOTE} characters, got {len(note)}")
        async with self._sessions() as session, session.begin():
            permit = await check_dial(session, number, Purpose.CALLBACK, customer_id=customer_id,
                                      recent_contact=self._recent_contact, now=now)
            callback = Callback(customer_id=permit.customer_id, number=number, due_at=max(due_at, now), note=note,
                                status=CallbackStatus.SCHEDULED, attempts=0, max_attempts=self.max_attempts,
                                requested_by=access.actor_id, created_at=now)
            session.add(callback)
            await session.flush()
            await record_access(session, access, CALLBACKS, callback, "create",
                                f"scheduled for {callback.due_at.isoformat()}")
        log.info("callback scheduled", extra={"callback_id": callback.id, "customer_id": permit.customer_id})
        return callback

    async def release_stale(self) -> int:
        """Tries cut short by a stop: what was being dialled is due again."""
        async with self._sessions() as session, session.begin():
            result = await session.execute(update(Callback).where(Callback.status == CallbackStatus.DIALLING)
                                           .values(status=CallbackStatus.SCHEDULED))
        return result.rowcount

    async def claim_due(self, limit: int, now: datetime | None = None) -> list[DueCallback]:
        """Up to `limit` callbacks whose time has come, earliest first, marked as being dialled."""
        now = now or datetime.now(UTC)
        claimed = []
        async with self._sessions() as session, session.begin():
            due = (await session.scalars(
                select(Callback).where(Callback.status == CallbackStatus.SCHEDULED, Callback.due_at <= now)
                .order_by(Callback.due_at, Callback.id).limit(limit).with_for_update(skip_locked=True))).all()
            for callback in due:
                callback.status = CallbackStatus.DIALLING
                claimed.append(DueCallback(callback.id, callback.customer_id, callback.number, callback.note))
        return claimed

    async def recheck(self, due: DueCallback, now: datetime | None = None) -> DialPermit:
        """The consent and do-not-call check again, as the callback is about to be dialled."""
        async with self._sessions() as session:
            return await check_dial(session, due.number, Purpose.CALLBACK, customer_id=due.customer_id,
                                    recent_contact=self._recent_contact, now=now)

    async def unclaim(self, callback_id: int) -> None:
        """Claimed, but no agent was free after all: due again, no try counted."""
        async with self._sessions() as session, session.begin():
            await session.execute(update(Callback).where(Callback.id == callback_id,
                                                         Callback.status == CallbackStatus.DIALLING)
                                  .values(status=CallbackStatus.SCHEDULED))

    async def record(self, callback_id: int, result: str, reason: str, call_id: str | None,
                     now: datetime | None = None) -> CallbackStatus | None:
        """Keep how a try went and decide what comes next; None if the callback is gone (erased)."""
        now = now or datetime.now(UTC)
        async with self._sessions() as session, session.begin():
            callback = await session.get(Callback, callback_id, with_for_update=True)
            if callback is None:
                return None
            if result != REFUSED:
                callback.attempts += 1
            callback.status = _next_status(result, callback.attempts, callback.max_attempts)
            if callback.status is CallbackStatus.SCHEDULED:
                callback.due_at = now + self.retry_after
            callback.last_attempt_at = now
            callback.last_result, callback.last_reason = result, reason[:255]
            callback.last_call_id = call_id or callback.last_call_id
        log.info("callback try: %s (%s)", result, reason, extra={"callback_id": callback_id, "call_id": call_id})
        return callback.status


def _next_status(result: str, attempts: int, max_attempts: int) -> CallbackStatus:
    if result == ANSWERED:
        return CallbackStatus.DONE
    if result == REFUSED:
        return CallbackStatus.REFUSED
    return CallbackStatus.FAILED if attempts >= max_attempts else CallbackStatus.SCHEDULED
