"""Outbound calls: the agent's own (click to dial) and each try of a callback.

Consent and do-not-call come first (crm.consent.check_dial); only a number that
passes is dialled. The call gets its id before anything is sent (Originate's
ChannelId), so every AMI fact about it finds it. The agent's screen pops the
customer and confirms it, the PBX rings the agent's phone, and once the agent
picks up the from-agents dialplan dials the customer with the caller ID the
contact centre presents. The router follows the call from there.

Purposes: an agent's own call is a `service` call about the customer's own open
matter; a callback's try is a `callback` call (docs/OUTBOUND.md).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.ext.asyncio import async_sessionmaker

from contactcentre.crm.callbacks import DueCallback
from contactcentre.crm.consent import Purpose, check_dial
from contactcentre.crm.phones import to_e164
from contactcentre.crm.screenpop import ScreenPopLookup
from contactcentre.routing.models import Direction, LiveAgent, LiveCall, OutboundAttempt
from contactcentre.routing.service import QueueRouter
from contactcentre.telephony.ami.client import AmiError, AmiNotConnected
from contactcentre.telephony.commands import ORIGINATE_REASONS, OriginateFailed, PbxCommands

log = logging.getLogger(__name__)

CALL_ID_PREFIX = "cc-out-"
# Originate Reasons that mean the agent's phone rang but was not picked up (or refused the call).
PHONE_NOT_PICKED_UP = {1, 3, 5}


@dataclass(frozen=True)
class OutboundPolicy:
    caller_id: str  # what the customer is shown: "Name" <number>
    agent_ring_timeout: float  # seconds the agent's phone rings
    customer_ring_timeout: int  # seconds the customer's phone rings
    pop_wait: float  # seconds to wait for the agent's screen to show the customer first
    recent_contact: timedelta  # a contact this recent is an open matter for a service call
    region: str  # for numbers typed without a country code


class OutboundDialler:
    def __init__(self, sessions: async_sessionmaker, lookup: ScreenPopLookup, router: QueueRouter,
                 pbx: PbxCommands, policy: OutboundPolicy, clock: Callable[[], float] = time.time):
        self._sessions = sessions
        self._lookup = lookup
        self._router = router
        self._pbx = pbx
        self._policy = policy
        self._clock = clock
        self._tasks: set[asyncio.Task] = set()

    async def agent_call(self, agent_id: int, typed: str, customer_id: int | None = None) -> LiveCall:
        """Click to dial. Raises InvalidPhoneNumber, DialRefused (with the reason) or RoutingError."""
        self._router.check_can_dial(agent_id)  # an agent on a call is told so before the store is asked
        number = to_e164(typed, self._policy.region)
        async with self._sessions() as session:
            await check_dial(session, number, Purpose.SERVICE, customer_id=customer_id,
                             recent_contact=self._policy.recent_contact)
        call = await self._new_call(number, Purpose.SERVICE)
        agent = self._router.dial_out(agent_id, call)
        log.info("agent dials out", extra={"call_id": call.call_id, "agent_id": agent_id})
        self._start(agent, call)
        return call

    async def callback_call(self, due: DueCallback) -> LiveCall | None:
        """A callback's try, already re-checked, offered to the longest-idle agent; None if none is free."""
        call = await self._new_call(due.number, Purpose.CALLBACK, due)
        agent = self._router.offer_outbound(call)
        if agent is None:
            return None
        log.info("callback offered", extra={"call_id": call.call_id, "agent_id": agent.agent_id,
                                            "callback_id": due.id})
        self._start(agent, call)
        return call

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _new_call(self, number: str, purpose: Purpose, due: DueCallback | None = None) -> LiveCall:
        pop = await self._lookup.lookup(number, "")
        attempt = OutboundAttempt(number, purpose.value, due.id if due else None, due.note if due else None)
        return LiveCall(f"{CALL_ID_PREFIX}{uuid.uuid4().hex}", None, pop, self._clock(),
                        direction=Direction.OUTBOUND, outbound=attempt)

    def _start(self, agent: LiveAgent, call: LiveCall) -> None:
        task = asyncio.get_running_loop().create_task(self._place(agent, call), name=f"outbound-{call.call_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _place(self, agent: LiveAgent, call: LiveCall) -> None:
        policy = self._policy
        try:
            async with asyncio.timeout(policy.pop_wait):
                await call.pop_shown.wait()
        except TimeoutError:
            log.info("screen pop not confirmed; dialling anyway", extra={"call_id": call.call_id})
        try:
            await self._pbx.call_agent_then_number(agent.device, call.outbound.number, policy.caller_id,
                                                   call_id=call.call_id, agent_timeout=policy.agent_ring_timeout,
                                                   number_timeout=policy.customer_ring_timeout)
        except OriginateFailed as exc:
            missed = exc.reason in PHONE_NOT_PICKED_UP
            self._router.outbound_failed(call, "agent-missed" if missed else "failed",
                                         f"the agent's phone: {ORIGINATE_REASONS.get(exc.reason, 'failed')}")
        except (AmiError, AmiNotConnected, TimeoutError) as exc:
            log.warning("the PBX did not place an outbound call: %s", exc, extra={"call_id": call.call_id})
            self._router.outbound_failed(call, "failed", f"the PBX did not place the call: {exc}")
