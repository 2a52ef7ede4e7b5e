"""Domain events the router publishes on the bus."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class CustomerRecordShown:
    """An agent was offered a call and shown the caller's customer record (to be audited)."""

    agent_id: int
    customer_id: int
    call_id: str
    at: float
