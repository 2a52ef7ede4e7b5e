"""The `inbound` FastAGI script: recognise the caller, queue, ring the chosen agent, then the survey.

One coroutine per call. The AGI session holds the call (music on hold) until
the router picks an agent; the agent's screen pop goes out at that moment,
before the phone is dialled. A phone that rings out puts the call back at the
head of the queue and the agent into `paused`.

The Dial has app_dial's `g` option: when the agent hangs up, Dial returns 0
and the caller's channel, still up, stays in this session, which runs the
post-call survey. Without g the channel would stay up too (agi-ivr.agi.txt
session 2) but Dial would return -1, as it does when the caller hangs up, and
the HANGUP notice that tells them apart comes only with the next command.
When the caller hangs up, or is moved by a Redirect or a blind transfer, Dial
returns -1 and the session is over (res_agi reads the move as a hangup), so
the survey never runs for those. A call held through the hold context comes
back for its survey through the `survey` script (SurveyEntry), which cc-hold's
Bridge() sends the caller to when the agent hangs up after resume.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime

from contactcentre.crm.screenpop import ScreenPopLookup
from contactcentre.ivr.survey import PostCallSurvey, SurveyedCall
from contactcentre.routing.models import LiveAgent, LiveCall
from contactcentre.routing.service import QueueRouter
from contactcentre.telephony.agi.server import AgiSession
from contactcentre.telephony.tracker import CallTracker

log = logging.getLogger(__name__)

MUSIC_CLASS = "default"
# t/T: both parties may use the features.conf transfer codes; g: the caller stays when the agent hangs up.
DIAL_OPTIONS = "tTg"


class InboundFlow:
    def __init__(self, lookup: ScreenPopLookup, router: QueueRouter, tracker: CallTracker, survey: PostCallSurvey,
                 ring_timeout: int, pop_wait: float, max_talk: float):
        self._lookup = lookup
        self._router = router
        self._tracker = tracker
        self._survey = survey
        self._ring_timeout = ring_timeout
        self._pop_wait = pop_wait
        self._max_talk = max_talk

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
            caller_stayed = await self._connect(session, call)
        finally:
            if call.answered_at is None:
                self._router.abandon(call_id)
        if caller_stayed:
            await self._survey.offer(session, surveyed(call))

    async def _connect(self, session: AgiSession, call: LiveCall) -> bool:
        """Ring agents until one talks to the caller; True if the caller is still here when the agent hangs up."""
        while True:
            agent = await self._wait_for_agent(session, call)
            if agent is None:
                log.info("caller left the queue", extra={"call_id": call.call_id})
                return False
            await self._until_pop_shown(call)
            dialled = await session.exec("Dial", f"{agent.device},{self._ring_timeout},{DIAL_OPTIONS}",
                                         takes=self._ring_timeout + self._max_talk)
            status = await session.get_variable("DIALSTATUS")
            if status == "ANSWER" or session.hung_up.is_set():
                return dialled.result == 0 and status == "ANSWER" and not session.hung_up.is_set()
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


class SurveyEntry:
    """The `survey` FastAGI script: a caller the dialplan sends back after the agent hung up (the
    hold context's Bridge() does, when the agent hangs up after resume). The call is found by the
    caller's channel, whose uniqueid is the call id; one the router does not hold gets no survey."""

    def __init__(self, router: QueueRouter, survey: PostCallSurvey):
        self._router = router
        self._survey = survey

    async def __call__(self, session: AgiSession) -> None:
        call = self._router.calls.get(session.uniqueid)
        if call is None:
            log.info("survey entry for a call the router does not hold", extra={"call_id": session.uniqueid})
            return
        await self._survey.offer(session, surveyed(call))


def surveyed(call: LiveCall) -> SurveyedCall:
    return SurveyedCall(call.call_id, call.customer_id, datetime.fromtimestamp(call.arrived_at, UTC))
