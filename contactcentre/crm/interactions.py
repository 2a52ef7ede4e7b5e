"""Writes interactions, idempotent by call id.

Each write is an INSERT ... ON CONFLICT (call_id) DO UPDATE of just the fields
it knows, so the call-end write, the agent's disposition and the caller's
survey answers can arrive in any order, and a retry after a fault never makes a
second row. A write that fails because the database is away for a moment is
retried with back-off.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import async_sessionmaker

from contactcentre.crm.models import Agent, Interaction, InteractionLeg, Queue, SurveyResponse

log = logging.getLogger(__name__)

RETRY_DELAYS = (0.1, 0.3, 1.0, 3.0, 10.0)  # then every 10 s until the store is back
MAX_BATCH = 200
LEG_FIELDS = ("agent_id", "joined_at", "left_at", "talk_seconds", "hold_seconds")


class InteractionWriter:
    """Writes go through one writer task, in order: nothing on the call path waits for the
    store, SQLite never has two of our writers queueing for its lock, and the writes that
    pile up while one commits go out together in the next transaction."""

    def __init__(self, sessions: async_sessionmaker, track: Callable[[asyncio.Task], None] = lambda task: None):
        self._sessions = sessions
        self._track = track  # so shutdown (and a test) can wait for what is queued
        self._queue_ids: dict[str, int] = {}
        self._pending: list[dict] = []
        self._worker: asyncio.Task | None = None
        self._statements: dict[tuple[str, frozenset[str]], object] = {}

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

    def submit(self, call_id: str, arrived_at: datetime, **fields: object) -> None:
        """Queue a create-or-update of the interaction of `call_id` with the fields given. Two are
        more than columns: `legs` (one dict per agent device) and `survey` (the caller's answers so
        far, one dict per question with question, score and answered_at)."""
        self._pending.append({"call_id": call_id, "arrived_at": arrived_at, **fields})
        if self._worker is None or self._worker.done():
            self._worker = asyncio.get_running_loop().create_task(self._drain_pending(), name="interaction-writer")
            self._track(self._worker)

    async def record(self, call_id: str, arrived_at: datetime, **fields: object) -> None:
        """Write now and return once it is stored."""
        self.submit(call_id, arrived_at, **fields)
        await self.flush()

    async def flush(self) -> None:
        while self._worker is not None and not self._worker.done():
            await asyncio.shield(self._worker)

    async def _drain_pending(self) -> None:
        while self._pending:
            batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
            await self._write_with_retries(batch)

    async def _write_with_retries(self, batch: list[dict]) -> None:
        attempt = 0
        while True:
            try:
                await self._write(batch)
                return
            except (OperationalError, DBAPIError, OSError) as exc:
                if not _is_transient(exc):
                    log.error("%d interaction writes refused by the store: %s", len(batch), exc,
                              extra={"call_id": batch[0]["call_id"]})
                    return
                delay = RETRY_DELAYS[min(attempt, len(RETRY_DELAYS) - 1)]
                attempt += 1
                log.warning("store unavailable (attempt %d), %d writes wait, retrying in %.1f s: %s", attempt,
                            len(batch) + len(self._pending), delay, exc.__class__.__name__)
                await asyncio.sleep(delay)

    async def _write(self, batch: list[dict]) -> None:
        async with self._sessions() as session, session.begin():
            dialect = session.bind.dialect.name
            for values in batch:  # upserts by call id: a retried batch writes the same rows again, no more
                values = dict(values)
                legs = values.pop("legs", None)
                answers = values.get("survey")
                if answers is not None:  # the interaction keeps {question: score}; each answer gets its row
                    values["survey"] = {answer["question"]: answer["score"] for answer in answers}
                await session.execute(self._statement(dialect, frozenset(values)), values)
                if legs:
                    await self._upsert_legs(session, dialect, values["call_id"], legs)
                if answers:
                    await self._upsert_answers(session, dialect, values["call_id"], values.get("customer_id"),
                                               answers)

    def _statement(self, dialect: str, keys: frozenset[str]):
        """INSERT ... ON CONFLICT (call_id) DO UPDATE of the given fields, built once per dialect and field set."""
        statement = self._statements.get((dialect, keys))
        if statement is None:
            insert = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(Interaction)
            update = {key: insert.excluded[key] for key in keys - {"call_id", "arrived_at"}}
            statement = insert.on_conflict_do_update(index_elements=["call_id"],
                                                     set_=update or {"call_id": insert.excluded.call_id})
            self._statements[(dialect, keys)] = statement
        return statement

    @staticmethod
    async def _upsert_legs(session, dialect: str, call_id: str, legs: list[dict]) -> None:
        """One row per agent device that talked to the caller, with the agent it belongs to if known."""
        devices = [leg["agent_device"] for leg in legs]
        agents = dict((await session.execute(select(Agent.device, Agent.id).where(Agent.device.in_(devices)))).all())
        rows = [{"call_id": call_id, "agent_id": agents.get(leg["agent_device"]), **leg} for leg in legs]
        insert = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(InteractionLeg).values(rows)
        await session.execute(insert.on_conflict_do_update(
            index_elements=["call_id", "agent_device"], set_={key: insert.excluded[key] for key in LEG_FIELDS}))

    @staticmethod
    async def _upsert_answers(session, dialect: str, call_id: str, customer_id: int | None,
                              answers: list[dict]) -> None:
        """One survey_responses row per question of the call: a later answer to it replaces the earlier."""
        rows = [{"call_id": call_id, "customer_id": customer_id, **answer} for answer in answers]
        insert = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(SurveyResponse).values(rows)
        await session.execute(insert.on_conflict_do_update(
            index_elements=["call_id", "question"],
            set_={key: insert.excluded[key] for key in ("customer_id", "score", "answered_at")}))


def _is_transient(exc: BaseException) -> bool:
    if isinstance(exc, OSError):
        return True
    text = str(exc).lower()
    return any(word in text for word in ("locked", "busy", "connection", "could not connect", "terminat", "closed"))
