"""The router: owns live agents and queued calls, matches them, longest-idle first.

It takes calls from the inbound flow and AMI facts from the bus, drives each
agent's state machine, tells the agent's screen through a Notifier, and hands
finished calls to the store. It knows nothing of sockets or HTTP.

Outbound calls (an agent's own, a callback's try) are handed to it already
checked for consent (routing/outbound.py places them): it takes the agent out
of the queue's pool, follows the agent's leg and the customer's through the
same AMI facts, and writes them as outbound interactions. Callers waiting in
the queue come before callbacks: a callback is offered only to an agent no
caller is waiting for.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Protocol

from transitions import MachineError

from contactcentre.bus import Bus
from contactcentre.crm.interactions import InteractionWriter
from contactcentre.crm.screenpop import ScreenPop
from contactcentre.routing.events import CustomerRecordShown, OutboundCallEnded
from contactcentre.routing.models import AgentState, Direction, LiveAgent, LiveCall, agent_machine
from contactcentre.telephony.events import (
    AgentLegAnswered,
    AgentLegEnded,
    AgentLegRinging,
    CallEnded,
    OutboundDialEnded,
)

log = logging.getLogger(__name__)

MAX_NOTES = 4000
# Dial()'s DIALSTATUS for a customer not reached: (result kept on a callback, the reason in words).
NOT_REACHED = {
    "NOANSWER": ("no-answer", "the customer did not answer"),
    "BUSY": ("busy", "the customer's line was busy"),
    "CONGESTION": ("unreachable", "the network could not connect the call"),
    "CHANUNAVAIL": ("unreachable", "the number could not be reached"),
    "CANCEL": ("cancelled", "the agent hung up before the customer answered"),
}
AGENT_MISSED = ("agent-missed", "the agent's phone was not picked up")


class RoutingError(Exception):
    """A request the router refuses; `status` and `error_id` go back to the client."""

    def __init__(self, message: str, status: int = 409, error_id: str = "routing-conflict"):
        super().__init__(message)
        self.status = status
        self.error_id = error_id


class Notifier(Protocol):
    def agent_state(self, agent: LiveAgent) -> None: ...
    def call_offered(self, agent: LiveAgent, call: LiveCall) -> None:
        """Show the pop on the agent's screen; set `call.pop_shown` once the screen confirms it."""
    def call_state(self, agent: LiveAgent, call_id: str, state: str, reason: str = "") -> None: ...


class QueueRouter:
    def __init__(self, bus: Bus, writer: InteractionWriter, notifier: Notifier, queue: str,
                 dispositions: tuple[str, ...], clock: Callable[[], float] = time.time):
        self.queue = queue
        self.dispositions = dispositions
        self._bus = bus
        self._writer = writer
        self._notifier = notifier
        self._clock = clock
        self._machine = agent_machine()
        self.agents: dict[int, LiveAgent] = {}
        self._by_device: dict[str, LiveAgent] = {}
        self._idle: OrderedDict[int, LiveAgent] = OrderedDict()  # available agents, longest idle first
        self._waiting: deque[LiveCall] = deque()
        self.calls: dict[str, LiveCall] = {}
        bus.subscribe(AgentLegRinging, self._on_agent_ringing)
        bus.subscribe(AgentLegAnswered, self._on_agent_answered)
        bus.subscribe(AgentLegEnded, self._on_agent_leg_ended)
        bus.subscribe(OutboundDialEnded, self._on_outbound_dial_ended)
        bus.subscribe(CallEnded, self._on_call_ended)

    # -- agents ---------------------------------------------------------------

    def agent_login(self, agent_id: int, username: str, name: str, device: str) -> LiveAgent:
        agent = self.agents.get(agent_id)
        if agent is None:
            agent = LiveAgent(agent_id, username, name, device)
            self._machine.add_model(agent, initial=AgentState.LOGGED_OUT.value)
            self.agents[agent_id] = agent
            self._by_device[device] = agent
        if agent.status is AgentState.LOGGED_OUT:
            self._fire(agent, "login")
            agent.pause_reason = "logged in"
            self._notifier.agent_state(agent)
        return agent

    def agent_ready(self, agent_id: int) -> LiveAgent:
        agent = self._agent(agent_id)
        if agent.status is AgentState.AVAILABLE:
            return agent
        self._fire(agent, "ready")
        self._make_idle(agent)
        self._notifier.agent_state(agent)
        self._match()
        return agent

    def agent_pause(self, agent_id: int, reason: str) -> LiveAgent:
        agent = self._agent(agent_id)
        if agent.status is AgentState.PAUSED:
            return agent
        self._fire(agent, "pause")
        self._idle.pop(agent.agent_id, None)
        agent.pause_reason = reason[:64] or "not ready"
        self._notifier.agent_state(agent)
        return agent

    def agent_logout(self, agent_id: int) -> None:
        agent = self.agents.get(agent_id)
        if agent is None or agent.status not in (AgentState.AVAILABLE, AgentState.PAUSED):
            return  # an agent with a call stays until the call and its wrap-up are done
        self._fire(agent, "logout")
        self._idle.pop(agent_id, None)
        self._notifier.agent_state(agent)

    def _make_idle(self, agent: LiveAgent) -> None:
        agent.idle_since = self._clock()
        agent.pause_reason = ""
        self._idle[agent.agent_id] = agent

    # -- calls ----------------------------------------------------------------

    def enqueue(self, call_id: str, pop: ScreenPop, arrived_at: float | None = None) -> LiveCall:
        call = self.calls.get(call_id)
        if call is None:
            call = LiveCall(call_id, self.queue, pop, arrived_at or self._clock())
            self.calls[call_id] = call
        call.assigned = asyncio.get_running_loop().create_future()
        self._waiting.append(call)
        self._match()
        return call

    def requeue_first(self, call: LiveCall) -> None:
        """The offered agent did not answer: the call goes back to the head of the queue."""
        agent = self.agents.get(call.agent_id) if call.agent_id else None
        if agent is not None and agent.status is AgentState.RESERVED and agent.call_id == call.call_id:
            self._fire(agent, "no_answer")
            agent.call_id = None
            agent.pause_reason = "no answer"
            self._notifier.call_state(agent, call.call_id, "missed")
            self._notifier.agent_state(agent)
            log.info("agent did not answer; paused", extra={"call_id": call.call_id, "agent_id": agent.agent_id})
        call.agent_id = None
        call.offered_at = None
        call.assigned = asyncio.get_running_loop().create_future()
        self._waiting.appendleft(call)
        self._match()

    def abandon(self, call_id: str) -> None:
        """The caller left before reaching an agent."""
        call = self.calls.get(call_id)
        if call is None:
            return
        if call in self._waiting:
            self._waiting.remove(call)
        if call.assigned and not call.assigned.done():
            call.assigned.cancel()
        self._release_reserved(call)

    def _release_reserved(self, call: LiveCall) -> None:
        agent = self.agents.get(call.agent_id) if call.agent_id else None
        if agent is None or agent.status is not AgentState.RESERVED or agent.call_id != call.call_id:
            return
        self._fire(agent, "withdraw")
        agent.call_id = None
        self._make_idle(agent)
        self._notifier.call_state(agent, call.call_id, "ended")
        self._notifier.agent_state(agent)
        self._match()

    def _match(self) -> None:
        while self._waiting and self._idle:
            call = self._waiting.popleft()
            if call.assigned is None or call.assigned.done():
                continue
            _, agent = self._idle.popitem(last=False)
            self._fire(agent, "offer")
            self._hand_over(agent, call)
            call.assigned.set_result(agent)

    def _hand_over(self, agent: LiveAgent, call: LiveCall) -> None:
        """The call is this agent's now: their screen pops it, and the pop is audited."""
        agent.call_id = call.call_id
        call.agent_id = agent.agent_id
        call.offered_at = self._clock()
        call.pop_shown.clear()
        log.info("call offered", extra={"call_id": call.call_id, "agent_id": agent.agent_id})
        self._notifier.call_offered(agent, call)
        self._notifier.agent_state(agent)
        if call.customer_id is not None:
            self._bus.publish(CustomerRecordShown(agent.agent_id, call.customer_id, call.call_id, call.offered_at))

    # -- outbound ---------------------------------------------------------------

    def check_can_dial(self, agent_id: int) -> LiveAgent:
        """The agent, if they may place a call of their own now (ready or not ready); else RoutingError."""
        agent = self._agent(agent_id)
        if agent.status not in (AgentState.AVAILABLE, AgentState.PAUSED):
            raise RoutingError(f"cannot dial while {agent.state.replace('_', ' ')}", 409, "bad-state")
        return agent

    def dial_out(self, agent_id: int, call: LiveCall) -> LiveAgent:
        """The agent's own call (click to dial), already checked for consent."""
        agent = self.check_can_dial(agent_id)
        self._fire(agent, "dial")
        self._idle.pop(agent_id, None)
        self.calls[call.call_id] = call
        self._hand_over(agent, call)
        return agent

    @property
    def free_for_outbound(self) -> int:
        """How many agents a callback could be offered to now: none while callers wait."""
        return 0 if self._waiting else len(self._idle)

    def offer_outbound(self, call: LiveCall) -> LiveAgent | None:
        """A callback's try, already checked, to the longest-idle agent; None if nobody is free."""
        if not self.free_for_outbound:
            return None
        _, agent = self._idle.popitem(last=False)
        self._fire(agent, "offer")
        self.calls[call.call_id] = call
        self._hand_over(agent, call)
        return agent

    def outbound_failed(self, call: LiveCall, result: str, reason: str) -> None:
        """The PBX refused or lost an Originate. If it made no channel, no AMI fact will end the
        call, so it ends here; otherwise the channel's own events end it."""
        attempt = call.outbound
        if attempt.finished or attempt.seen:
            return
        agent = self._holder(call)
        if agent is not None and agent.status in (AgentState.RESERVED, AgentState.DIALLING):
            self._missed(agent, call, result, reason)
        call.ended_at = self._clock()
        self._finish_outbound(call, ())

    def _holder(self, call: LiveCall) -> LiveAgent | None:
        agent = self.agents.get(call.agent_id) if call.agent_id else None
        return agent if agent is not None and agent.call_id == call.call_id else None

    def _on_agent_ringing(self, event: AgentLegRinging) -> None:
        call = self.calls.get(event.call_id)
        if call is not None and call.outbound is not None:
            call.outbound.seen = True

    def _outbound_agent_answered(self, agent: LiveAgent, call: LiveCall) -> None:
        """The agent picked up: the dialplan now dials the customer."""
        call.outbound.seen = call.outbound.agent_answered = True
        if agent.status is AgentState.RESERVED:
            self._fire(agent, "dial")
            self._notifier.agent_state(agent)
        if agent.status is AgentState.DIALLING:
            self._notifier.call_state(agent, call.call_id, "dialling")

    def _on_outbound_dial_ended(self, event: OutboundDialEnded) -> None:
        call = self.calls.get(event.call_id)
        agent = self._holder(call) if call is not None else None
        if agent is None or agent.status is not AgentState.DIALLING:
            return
        if event.status == "ANSWER":
            self._fire(agent, "connect")
            call.answered_at = event.at
            call.outbound.result, call.outbound.reason = "answered", "the customer answered"
            self._notifier.call_state(agent, call.call_id, "answered")
        else:
            result, reason = NOT_REACHED.get(event.status, ("unreachable", f"the call did not go through "
                                                                         f"({event.status})"))
            self._unreached(agent, call, result, reason)
        self._notifier.agent_state(agent)

    def _unreached(self, agent: LiveAgent, call: LiveCall, result: str, reason: str) -> None:
        self._fire(agent, "unreached")
        call.outbound.result, call.outbound.reason = result, reason
        self._notifier.call_state(agent, call.call_id, "unreached", reason)

    def _missed(self, agent: LiveAgent, call: LiveCall, result: str, reason: str) -> None:
        """The agent's own phone never picked up: not ready, as after a missed inbound call."""
        self._fire(agent, "no_answer")
        agent.call_id = None
        agent.pause_reason = "no answer"
        call.outbound.result, call.outbound.reason = result, reason
        self._notifier.call_state(agent, call.call_id, "missed", reason)
        self._notifier.agent_state(agent)

    def _outbound_leg_ended(self, agent: LiveAgent, call: LiveCall) -> None:
        """The agent's leg is gone before the customer answered (or was found unreachable)."""
        if agent.status is AgentState.DIALLING and call.outbound.agent_answered:
            self._unreached(agent, call, *NOT_REACHED["CANCEL"])
            self._notifier.agent_state(agent)
        elif agent.status in (AgentState.RESERVED, AgentState.DIALLING):
            self._missed(agent, call, *AGENT_MISSED)

    def _finish_outbound(self, call: LiveCall, legs) -> None:
        """Write the outbound interaction and say how it ended, once."""
        attempt = call.outbound
        attempt.finished = True
        answered = call.answered_at is not None
        self._writer.submit(
            call.call_id, _dt(call.arrived_at), direction=Direction.OUTBOUND.value, caller_number=attempt.number,
            customer_id=call.customer_id, agent_id=call.agent_id, queue_id=None, offered_at=_dt(call.offered_at),
            answered_at=_dt(call.answered_at), ended_at=_dt(call.ended_at),
            end_reason=None if answered else (attempt.reason or "ended before the customer answered")[:64],
            legs=legs)
        self._bus.publish(OutboundCallEnded(call.call_id, attempt.callback_id, attempt.result or AGENT_MISSED[0],
                                            attempt.reason or AGENT_MISSED[1], call.ended_at or self._clock()))
        agent = self._holder(call)
        if not (agent and agent.status is AgentState.WRAP_UP):
            self.calls.pop(call.call_id, None)

    # -- what the PBX tells us -----------------------------------------------

    def _on_agent_answered(self, event: AgentLegAnswered) -> None:
        agent = self._by_device.get(event.device)
        call = self.calls.get(event.call_id)
        if agent is None or call is None or agent.call_id != event.call_id:
            return
        if call.outbound is not None:
            self._outbound_agent_answered(agent, call)
            return
        if agent.status is not AgentState.RESERVED:
            return
        self._fire(agent, "answer")
        call.answered_at = event.at
        self._notifier.call_state(agent, call.call_id, "answered")
        self._notifier.agent_state(agent)

    def _on_agent_leg_ended(self, event: AgentLegEnded) -> None:
        agent = self._by_device.get(event.device)
        if agent is None or agent.call_id != event.call_id:
            return
        call = self.calls.get(event.call_id)
        if call is not None and call.outbound is not None and agent.status is not AgentState.ON_CALL:
            self._outbound_leg_ended(agent, call)
            return
        if agent.status is not AgentState.ON_CALL:
            return
        self._fire(agent, "hang_up")
        self._notifier.call_state(agent, event.call_id, "wrap_up")
        self._notifier.agent_state(agent)

    async def _on_call_ended(self, event: CallEnded) -> None:
        call = self.calls.get(event.call_id)
        if call is None:
            return
        call.ended_at = event.at
        if call.outbound is not None:
            self._outbound_ended(call, event)
            return
        self.abandon(call.call_id)
        agent = self.agents.get(call.agent_id) if call.agent_id else None
        answered = call.answered_at is not None
        self._writer.submit(
            call.call_id, _dt(call.arrived_at),
            caller_number=call.pop.caller_number,
            customer_id=call.customer_id,
            agent_id=call.agent_id if answered else None,
            queue_id=await self._writer.queue_id(call.queue),
            offered_at=_dt(call.offered_at),
            answered_at=_dt(call.answered_at),
            ended_at=_dt(call.ended_at),
            end_reason=event.reason or None,
            timeline=_timeline(call, event),
            legs=[_leg(leg) for leg in event.legs],
        )
        if not (agent and agent.call_id == call.call_id and agent.status is AgentState.WRAP_UP):
            self.calls.pop(call.call_id, None)

    def _outbound_ended(self, call: LiveCall, event: CallEnded) -> None:
        agent = self._holder(call)
        if agent is not None:  # the agent's leg vanished without its own end being seen
            self._outbound_leg_ended(agent, call)
        legs = [_leg(leg) for leg in event.legs]
        if call.outbound.finished:  # ended by outbound_failed: only the PBX's facts are new
            self._writer.submit(call.call_id, _dt(call.arrived_at), ended_at=_dt(call.ended_at), legs=legs,
                                timeline=_timeline(call, event))
            return
        self._writer.submit(call.call_id, _dt(call.arrived_at), timeline=_timeline(call, event))
        self._finish_outbound(call, legs)

    # -- wrap-up ----------------------------------------------------------------

    async def submit_disposition(self, agent_id: int, call_id: str, disposition: str, notes: str) -> None:
        agent = self._agent(agent_id)
        if agent.call_id != call_id or agent.status is not AgentState.WRAP_UP:
            raise RoutingError(f"call {call_id!r} is not in wrap-up with this agent", 403, "not-your-call")
        if disposition not in self.dispositions:
            raise RoutingError(f"disposition: expected one of {', '.join(self.dispositions)}, got {disposition!r}",
                               400, "bad-disposition")
        if len(notes) > MAX_NOTES:
            raise RoutingError(f"notes: at most {MAX_NOTES} characters, got {len(notes)}", 400, "notes-too-long")
        call = self.calls[call_id]
        # The agent moves on at once (so a second submit is refused); the store write follows in order.
        self._fire(agent, "finish")
        self._writer.submit(call_id, _dt(call.arrived_at), disposition=disposition, notes=notes)
        if call.ended_at is not None:
            self.calls.pop(call_id, None)
        agent.call_id = None
        self._make_idle(agent)
        self._notifier.call_state(agent, call_id, "closed")
        self._notifier.agent_state(agent)
        self._match()

    def call_of(self, agent_id: int, call_id: str) -> LiveCall:
        """The call `call_id` if this agent holds it, else RoutingError (403)."""
        agent = self._agent(agent_id)
        call = self.calls.get(call_id)
        if call is None or agent.call_id != call_id:
            raise RoutingError(f"call {call_id!r} is not this agent's", 403, "not-your-call")
        return call

    # -- helpers --------------------------------------------------------------

    def _agent(self, agent_id: int) -> LiveAgent:
        agent = self.agents.get(agent_id)
        if agent is None or agent.status is AgentState.LOGGED_OUT:
            raise RoutingError("agent is not logged in", 409, "not-logged-in")
        return agent

    def _fire(self, agent: LiveAgent, trigger: str) -> None:
        try:
            agent.trigger(trigger)
        except MachineError as exc:
            log.warning("agent state change refused: %s", exc.value,
                        extra={"agent_id": agent.agent_id, "call_id": agent.call_id})
            raise RoutingError(f"cannot {trigger.replace('_', ' ')} while {agent.state.replace('_', ' ')}",
                               409, "bad-state") from None


def _dt(ts: float | None) -> datetime | None:
    return datetime.fromtimestamp(ts, UTC) if ts is not None else None


def _timeline(call: LiveCall, event: CallEnded) -> list[list]:
    return [[round((t - call.arrived_at) * 1000), name, channel] for t, name, channel in event.timeline]


def _leg(leg: tuple[str, float, float | None, float, float]) -> dict:
    device, joined, left, talk, hold = leg
    return {"agent_device": device, "joined_at": _dt(joined), "left_at": _dt(left), "talk_seconds": talk,
            "hold_seconds": hold}
