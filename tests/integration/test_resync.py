"""The AMI link drops, calls change while it is down, the link comes back: no ghosts."""

import asyncio

from sqlalchemy import select

from contactcentre.crm.models import Interaction
from contactcentre.telephony.ami.client import LinkStatus
from contactcentre.telephony.tracker import LINK_DOWN_REASON
from tests.integration.test_walking_skeleton import take_call


async def until(predicate, timeout: float = 10.0):
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.02)


async def test_calls_that_ended_while_the_link_was_down_are_closed_and_new_ones_adopted(stack):
    sim, services = stack.sim, stack.services
    await stack.add_agent("alice", "PJSIP/agent1")
    alice = await stack.console("alice")
    talking, pop = await take_call(stack, alice, "+441632960101", "Jane Smith")
    assert (await alice.call("answer", {"call_id": pop["call_id"]}))["ok"]
    await alice.wait_state("on_call")
    queued = sim.place_call("+441632960102", "John Doe")  # nobody else is ready: it waits
    await until(lambda: queued.call_id in services.tracker.calls)

    sim.ami.paused = True  # the PBX's manager goes away
    for session in list(sim.ami.sessions):
        session.close()
    await until(lambda: services.ami.status is not LinkStatus.CONNECTED)
    talking.caller_hangup()  # the connected call ends unseen
    queued.caller_hangup()  # the queued caller gives up unseen
    await asyncio.wait_for(talking.finished.wait(), 5)
    await asyncio.wait_for(queued.finished.wait(), 5)
    arrived = sim.place_call("+4915112345678", "Max Mustermann")  # a new call the server has not seen
    await until(lambda: arrived.moh)
    assert talking.call_id in services.tracker.calls  # the tracker cannot know yet

    sim.ami.paused = False
    await until(lambda: services.ami.status is LinkStatus.CONNECTED)
    await until(lambda: talking.call_id not in services.tracker.calls)

    assert set(services.tracker.calls) == set(sim.calls) == {arrived.call_id}
    await alice.wait_state("wrap_up")  # not stuck on a call that no longer exists
    await services.bus.drain()
    async with services.sessions() as session:
        rows = {r.call_id: r for r in (await session.scalars(select(Interaction))).all()}
    assert rows[talking.call_id].end_reason == LINK_DOWN_REASON
    assert rows[talking.call_id].answered_at is not None and rows[talking.call_id].ended_at is not None
    assert rows[queued.call_id].answered_at is None
    assert arrived.call_id not in rows  # still live: written when it ends, once
    assert (await alice.call("disposition", {"call_id": talking.call_id, "disposition": "resolved",
                                             "notes": "cut off"}))["ok"]
    await services.bus.drain()
    async with services.sessions() as session:
        count = len((await session.scalars(select(Interaction).where(Interaction.call_id == talking.call_id))).all())
    assert count == 1
