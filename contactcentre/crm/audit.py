"""The audit trail: one row each time someone is shown or changes a customer's data."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from contactcentre.crm.models import AuditLog
from contactcentre.routing.events import CustomerRecordShown

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Access:
    """Who is reading or changing the store and why (an API route, a command): what each audit row says."""

    actor_id: int | None
    reason: str  # GET /api/customers/{customer_id}

    async def record(self, session: AsyncSession, action: str, entity: str, entity_id: int | str,
                     detail: str = "") -> None:
        """One audit row inside the caller's transaction, so a change and its audit commit together."""
        reason = f"{self.reason}: {detail}" if detail else self.reason
        await AuditTrail.write(session, self.actor_id, action, entity, str(entity_id), reason)


class AuditTrail:
    def __init__(self, sessions: async_sessionmaker):
        self._sessions = sessions

    async def record(self, actor_id: int | None, action: str, entity: str, entity_id: str, reason: str,
                     at: datetime | None = None) -> None:
        async with self._sessions() as session, session.begin():
            await self.write(session, actor_id, action, entity, entity_id, reason, at)

    @staticmethod
    async def write(session: AsyncSession, actor_id: int | None, action: str, entity: str, entity_id: str,
                    reason: str, at: datetime | None = None) -> None:
        """Add the row inside the caller's transaction, so a change and its audit commit together."""
        await session.execute(insert(AuditLog).values(
            at=at or datetime.now(UTC), actor_id=actor_id, action=action, entity=entity,
            entity_id=entity_id, reason=reason[:255]))

    async def on_record_shown(self, event: CustomerRecordShown) -> None:
        """A screen pop put a customer's record in front of an agent."""
        await self.record(event.agent_id, "view", "customer", str(event.customer_id),
                          f"screen pop for call {event.call_id}", datetime.fromtimestamp(event.at, UTC))
