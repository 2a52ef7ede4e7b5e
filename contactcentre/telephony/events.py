"""Domain events the telephony layer publishes on the bus.

Raw AMI headers stop in telephony/: these carry what routing and the store
need, named as the contact centre names it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class CallArrived:
    call_id: str
    channel: str
    caller_number: str
    caller_name: str
    at: float


@dataclass(frozen=True, slots=True)
class AgentLegRinging:
    call_id: str
    device: str
    channel: str
    at: float


@dataclass(frozen=True, slots=True)
class AgentLegAnswered:
    call_id: str
    device: str
    channel: str
    at: float


@dataclass(frozen=True, slots=True)
class AgentLegEnded:
    call_id: str
    device: str
    channel: str
    cause: int
    at: float


@dataclass(frozen=True, slots=True)
class CallEnded:
    call_id: str
    cause: int
    at: float
    reason: str = ""  # set when we did not see the hang-up, e.g. while the PBX link was down
    timeline: tuple[tuple[float, str, str], ...] = ()  # (time, AMI event, channel) as the tracker saw them
    legs: tuple[tuple[str, float, float | None, float, float], ...] = ()  # (agent device, joined, left, talk s, hold s)


@dataclass(frozen=True, slots=True)
class OutboundDialEnded:
    """A call the server placed: the agent's leg dialled the customer and it ended as `status`
    (Dial()'s DIALSTATUS: ANSWER, NOANSWER, BUSY, CONGESTION, CHANUNAVAIL, CANCEL)."""

    call_id: str
    status: str
    at: float
