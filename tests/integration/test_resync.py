"""The AMI link drops, calls change while it is down, the link comes back: no ghosts."""

import asyncio

from sqlalchemy import select

from contactcentre.crm.models import Interaction
from contactcentre.telephony.ami.client import LinkStatus
from contactcentre.telephony.tracker import LINK_DOWN_REASON
from tests.integration.test_walking_skeleton import take_call
from tests.support import until


async def cut_the_link(sim, services) -> None:
    sim.ami.paused = True  # the PBX's manager goes away
    for session in list(sim.ami.sessions):
        session.close()
    await until(lambda: services.ami.status is not LinkStatus.CONNECTED)


async def test_calls_that_ended_while_the_link_was_down_are_closed_and_new_ones_adopted(stack):
    sim, services = stack.sim, stack.services
    await stack.add_agent("alice", "PJSIP/agent1")
    alice = await stack.console("alice")
    talking, pop = await take_call(stack, alice, "+441632960101", "Jane Smith")
    assert (await alice.call("answer", {"call_id": pop["call_id"]}))["ok"]
    await alice.wait_state("on_call")
    queued = sim.place_call("+441632960102", "John Doe")  # nobody else is ready: it waits
    await until(lambda: queued.call_id in services.tracker.calls)

    await cut_the_link(sim, services)
    talking.caller_hangup()  # the connected call ends unseen
    queued.caller_hangup()  # the queued caller gives up unseen
    await asyncio.wait_for(talking.finished.wait(), 5)
    await asyncio.wait_for(queued.finished.wait(), 5)
    arrived = sim.place_call("+4915112345678", "Max Mustermann")  # a new call the server has not seen
    await until(lambda: arrived.moh)
    assert talking.call_id in services.tracker.calls  # the tracker cannot know yet

    asked = []  # what the server asks the PBX once it is back
    for name in ("coreshowchannels", "bridgelist"):
        def counting(session, action, answer=sim.ami.handlers[name]):
            asked.append(action.get("Action"))
            return answer(session, action)
        sim.ami.handlers[name] = counting
    sim.ami.paused = False
    await until(lambda: services.ami.status is LinkStatus.CONNECTED)
    await until(lambda: talking.call_id not in services.tracker.calls)
    await until(lambda: len(asked) == 2)
    assert asked == ["CoreShowChannels", "BridgeList"]

    assert set(services.tracker.calls) == set(sim.calls) == {arrived.call_id}
    await alice.wait_state("wrap_up")  # not stuck on a call that no longer exists
    await services.bus.drain()
    async with services.sessions() as session:
        rows = {r.call_id: r for r in (await session.scalars(select(Interaction))).all()}
    assert rows[talking.call_id].end_reason == LINK_DOWN_REASON
    assert rows[talking.call_id].answered_at is not None and rows[talking.call_id].ended_at is not None
    assert rows[queued.call_id].answered_at is None and rows[queued.call_id].end_reason == LINK_DOWN_REASON
    assert arrived.call_id not in rows  # still live: written when it ends, once
    assert (await alice.call("disposition", {"call_id": talking.call_id, "disposition": "resolved",
                                             "notes": "cut off"}))["ok"]
    await services.bus.drain()
    async with services.sessions() as session:
        count = len((await session.scalars(select(Interaction).where(Interaction.call_id == talking.call_id))).all())
    assert count == 1

    # The adopted call ends with the link up: written once, as any call that was seen from its start.
    arrived.caller_hangup()
    await asyncio.wait_for(arrived.finished.wait(), 5)
    await until(lambda: arrived.call_id not in services.tracker.calls)
    await services.bus.drain()
    async with services.sessions() as session:
        adopted = (await session.scalars(select(Interaction).where(Interaction.call_id == arrived.call_id))).all()
    assert len(adopted) == 1
    assert adopted[0].ended_at is not None and adopted[0].end_reason is None
    assert adopted[0].caller_number == "+4915112345678"


async def test_an_agent_reserved_for_a_call_that_vanished_while_the_link_was_down_is_freed(stack):
    sim, services = stack.sim, stack.services
    await stack.add_agent("bob", "PJSIP/agent2")
    bob = await stack.console("bob")
    ringing, pop = await take_call(stack, bob, "+441632960103", "Ann Lee")
    await bob.wait_state("reserved")  # offered: bob's phone rings, nobody has answered

    await cut_the_link(sim, services)
    ringing.caller_hangup()  # the caller gives up while it rings, unseen
    await asyncio.wait_for(ringing.finished.wait(), 5)
    sim.ami.paused = False
    await until(lambda: services.ami.status is LinkStatus.CONNECTED)
    await until(lambda: ringing.call_id not in services.tracker.calls)

    await bob.wait_state("available")  # free again, not held for a call that is gone
    await services.bus.drain()
    async with services.sessions() as session:
        row = (await session.scalars(select(Interaction).where(Interaction.call_id == pop["call_id"]))).one()
    assert (row.answered_at, row.agent_id, row.end_reason) == (None, None, LINK_DOWN_REASON)
    assert row.offered_at is not None
    nxt = sim.place_call("+441632960104", "Raj Patel")  # and bob is offered the next call
    assert (await bob.next("screen_pop"))["call_id"] == nxt.call_id
