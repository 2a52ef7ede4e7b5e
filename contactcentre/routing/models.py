"""Live routing state: agents with their state machine, and calls in the queue."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

from ruamel.yaml import YAML
from transitions import Machine

from contactcentre.crm.screenpop import ScreenPop

MACHINE_FILE = Path(__file__).with_name("agent_states.yaml")


class AgentState(str, Enum):
    LOGGED_OUT = "logged_out"
    PAUSED = "paused"
    AVAILABLE = "available"
    RESERVED = "reserved"
    DIALLING = "dialling"
    ON_CALL = "on_call"
    WRAP_UP = "wrap_up"


def agent_machine() -> Machine:
    """One machine drives every agent (each agent is a model of it): cheap with 1,000 agents."""
    spec = YAML(typ="safe").load(MACHINE_FILE.read_text())
    assert set(spec["states"]) == {s.value for s in AgentState}, "agent_states.yaml and AgentState disagree"
    return Machine(model=None, states=spec["states"], transitions=spec["transitions"],
                   initial=spec["initial"], auto_transitions=False)


@dataclass(eq=False)
class LiveAgent:
    """An agent as the router sees it. `state` is set by the machine."""

    agent_id: int
    username: str
    name: str
    device: str
    idle_since: float = 0.0
    call_id: str | None = None
    pause_reason: str = ""
    state: str = AgentState.LOGGED_OUT.value

    @property
    def status(self) -> AgentState:
        return AgentState(self.state)

    def as_dict(self) -> dict:
        return {"agent_id": self.agent_id, "name": self.name, "device": self.device, "state": self.state,
                "reason": self.pause_reason, "call_id": self.call_id}


class Direction(str, Enum):
    INBOUND = "inbound"
    OUTBOUND = "outbound"


@dataclass(eq=False)
class LiveCall:
    """A call the router owns from the moment the IVR hands it over (or an outbound call is
    placed) until its record is written."""

    call_id: str
    queue: str | None  # None for an outbound call: no queue routed it
    pop: ScreenPop
    arrived_at: float
    offered_at: float | None = None
    answered_at: float | None = None
    ended_at: float | None = None
    agent_id: int | None = None
    assigned: asyncio.Future | None = field(default=None, repr=False)
    pop_shown: asyncio.Event = field(default_factory=asyncio.Event, repr=False)  # the agent's screen has it
    direction: Direction = Direction.INBOUND
    outbound: OutboundAttempt | None = None

    @property
    def customer_id(self) -> int | None:
        return self.pop.customer.id if self.pop.customer else None


@dataclass(eq=False)
class OutboundAttempt:
    """What an outbound call is, and how it is going."""

    number: str  # E.164, the number dialled
    purpose: str  # the consent purpose it was checked for (crm.consent.Purpose)
    callback_id: int | None = None
    note: str | None = None  # the callback's note, for the agent
    seen: bool = False  # the PBX has shown a channel of it
    agent_answered: bool = False  # the agent's phone is up: the customer's number is being dialled
    result: str = ""  # answered, no-answer, busy ... once known
    reason: str = ""  # the result in words
    finished: bool = False  # its record is written and its end told to whoever waits on it
