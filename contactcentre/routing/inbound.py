"""The `inbound` FastAGI script: recognise the caller, queue, ring the chosen agent.

One coroutine per call. The AGI session holds the call (music on hold) until
the router picks an agent; the agent's screen pop goes out at that moment,
before the phone is dialled. A phone that rings out puts the call back at the
head of the queue and the agent into `paused`.
"""

from __future__ import annotations

import asyncio
import logging
import time

from contactcentre.crm.screenpop import ScreenPopLookup
from contactcentre.routing.models import LiveAgent, LiveCall
from contactcentre.routing.service import QueueRouter
from contactcentre.telephony.agi.server import AgiSession
from contactcentre.telephony.tracker import CallTracker

log = logging.getLogger(__name__)

MUSIC_CLASS = "default"


class InboundFlow:
    def __init__(self, lookup: ScreenPopLookup, router: QueueRouter, tracker: CallTracker, ring_timeout: int,
                 pop_wait: float):
        self._lookup = lookup
        self._router = router
        self._tracker = tracker
        self._ring_timeout = ring_timeout
        self._pop_wait = pop_wait

    async def __call__(self, session: AgiSession) -> None:
        call_id = session.uniqueid
        tracked = self._tracker.calls.get(call_id)
        arrived_at = tracked.started_at if tracked else time.time()
        answered = asyncio.ensure_future(session.answer())  # in flight while the store is asked
        try:
            pop = await self._lookup.lookup(session.caller_number, session.caller_name)
        except BaseException:
            answered.cancel()
            raise
        call = self._router.enqueue(call_id, pop, arrived_at)  # the pop goes out now if an agent is free
        await answered
        try:
            await self._connect(session, call)
        finally:
            if call.answered_at is None:
                self._router.abandon(call_id)

    async def _connect(self, session: AgiSession, call: LiveCall) -> None:
        while True:
            agent = await self._wait_for_agent(session, call)
            if agent is None:
                log.info("caller left the queue", extra={"call_id": call.call_id})
                return
            await self._until_pop_shown(call)
            await session.exec("Dial", f"{agent.device},{self._ring_timeout},tT")
            status = await session.get_variable("DIALSTATUS")
            if status == "ANSWER" or session.hung_up.is_set():
                return
            log.info("agent phone did not answer (%s)", status, extra={"call_id": call.call_id,
                                                                      "agent_id": agent.agent_id})
            self._router.requeue_first(call)

    async def _until_pop_shown(self, call: LiveCall) -> None:
        """The agent sees who is calling before the phone rings, unless the screen is slow to say so."""
        try:
            async with asyncio.timeout(self._pop_wait):
                await call.pop_shown.wait()
        except TimeoutError:
            log.info("screen pop not confirmed in %.1f s; ringing anyway", self._pop_wait,
                     extra={"call_id": call.call_id, "agent_id": call.agent_id})

    async def _wait_for_agent(self, session: AgiSession, call: LiveCall) -> LiveAgent | None:
        assigned = call.assigned
        if assigned.done():
            return None if assigned.cancelled() else assigned.result()
        await session.exec("StartMusicOnHold", MUSIC_CLASS)
        hung_up = asyncio.ensure_future(session.hung_up.wait())
        try:
            await asyncio.wait({assigned, hung_up}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            hung_up.cancel()
        if session.hung_up.is_set() or assigned.cancelled() or not assigned.done():
            return None
        await session.exec("StopMusicOnHold")
        return assigned.result()
