"""Writes interactions, idempotent by call id.

Each write is an INSERT ... ON CONFLICT (call_id) DO UPDATE of just the fields
it knows, so the call-end write and the agent's disposition can arrive in any
order, and a retry after a fault never makes a second row. A write that fails
because the database is away for a moment is retried with back-off.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import async_sessionmaker

from contactcentre.crm.models import Agent, Interaction, InteractionLeg, Queue

log = logging.getLogger(__name__)

RETRY_DELAYS = (0.1, 0.3, 1.0, 3.0, 10.0)


class InteractionWriter:
    def __init__(self, sessions: async_sessionmaker):
        self._sessions = sessions
        self._queue_ids: dict[str, int] = {}

    async def queue_id(self, name: str) -> int:
        """The id of a queue row, created on first use."""
        if name in self._queue_ids:
            return self._queue_ids[name]
        async with self._sessions() as session, session.begin():
            queue_id = await session.scalar(select(Queue.id).where(Queue.name == name))
            if queue_id is None:
                queue = Queue(name=name)
                session.add(queue)
                await session.flush()
                queue_id = queue.id
        self._queue_ids[name] = queue_id
        return queue_id

    async def record(self, call_id: str, arrived_at: datetime, **fields: object) -> None:
        """Create or update the interaction of `call_id` with the fields given."""
        values = {"call_id": call_id, "arrived_at": arrived_at, **fields}
        for attempt, delay in enumerate((*RETRY_DELAYS, None)):
            try:
                await self._upsert(values, fields)
                return
            except (OperationalError, DBAPIError, OSError) as exc:
                if delay is None or not _is_transient(exc):
                    log.error("interaction not stored: %s", exc, extra={"call_id": call_id})
                    raise
                log.warning("store unavailable (attempt %d), retrying in %.1f s: %s", attempt + 1, delay,
                            exc.__class__.__name__, extra={"call_id": call_id})
                await asyncio.sleep(delay)

    async def _upsert(self, values: dict, fields: dict) -> None:
        legs = values.pop("legs", None)
        fields = {key: value for key, value in fields.items() if key != "legs"}
        async with self._sessions() as session, session.begin():
            insert = postgresql.insert if session.bind.dialect.name == "postgresql" else sqlite.insert
            statement = insert(Interaction).values(**values)
            update = {key: statement.excluded[key] for key in fields} or {"call_id": statement.excluded.call_id}
            await session.execute(statement.on_conflict_do_update(index_elements=["call_id"], set_=update))
            if legs:
                await self._upsert_legs(session, insert, values["call_id"], legs)

    @staticmethod
    async def _upsert_legs(session, insert, call_id: str, legs: list[dict]) -> None:
        """One row per agent device that talked to the caller, with the agent it belongs to if known."""
        devices = [leg["agent_device"] for leg in legs]
        agents = dict((await session.execute(select(Agent.device, Agent.id).where(Agent.device.in_(devices)))).all())
        rows = [{"call_id": call_id, "agent_id": agents.get(leg["agent_device"]), **leg} for leg in legs]
        statement = insert(InteractionLeg).values(rows)
        await session.execute(statement.on_conflict_do_update(
            index_elements=["call_id", "agent_device"],
            set_={key: statement.excluded[key] for key in ("agent_id", "joined_at", "left_at", "talk_seconds",
                                                           "hold_seconds")}))


def _is_transient(exc: BaseException) -> bool:
    if isinstance(exc, OSError):
        return True
    text = str(exc).lower()
    return any(word in text for word in ("locked", "busy", "connection", "could not connect", "terminat", "closed"))
