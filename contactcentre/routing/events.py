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


@dataclass(frozen=True, slots=True)
class OutboundCallEnded:
    """An outbound call (the agent's own, or a callback's try) is over: how it went, for the callback."""

    call_id: str
    callback_id: int | None
    result: str  # answered, no-answer, busy, unreachable, cancelled, agent-missed, failed
    reason: str  # the result in words, as the console and the callback's record show it
    at: float
