"""One call from the PBX to the agent's screen pop and back into the store, over real sockets."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select

from contactcentre.crm.models import AuditLog, InteractionLeg, ServiceTier
from tests.support import add_customer, new_interactions, sqlite_url, start_stack


async def take_call(stack, console, number: str, name: str):
    """Go ready, let the simulator place a call, and return (sim call, pop)."""
    await console.wait_state("paused")
    assert (await console.call("ready"))["ok"]
    await console.wait_state("available")
    call = stack.sim.place_call(number, name)
    pop = await console.next("screen_pop")
    return call, pop


async def answer_hang_up_and_dispose(console, call, pop, disposition: str, notes: str) -> None:
    assert (await console.call("answer", {"call_id": pop["call_id"]}))["ok"]
    await console.wait_call_state("answered")
    await asyncio.wait_for(call.bridged.wait(), 5)
    assert (await console.call("hangup", {"call_id": pop["call_id"]}))["ok"]
    await console.wait_call_state("wrap_up")
    await console.wait_state("wrap_up")
    reply = await console.call("disposition", {"call_id": pop["call_id"], "disposition": disposition, "notes": notes})
    assert reply == {"ok": True}
    await console.wait_state("available")
    await asyncio.wait_for(call.finished.wait(), 5)


async def test_known_caller_pops_their_record_and_the_call_is_stored(stack):
    sessions = stack.services.sessions
    customer = await add_customer(sessions, "Jane", "Smith", "+441632960101", ServiceTier.PROACTIVE,
                                  notes=("earlier call 0", "earlier call 1"))
    agent = await stack.add_agent("alice", "PJSIP/agent1", name="Alice Agent")
    console = await stack.console("alice")

    call, pop = await take_call(stack, console, "+441632960101", "Jane Smith")

    assert pop["call_id"] == call.call_id
    assert pop["caller_number"] == "+441632960101"
    assert pop["customer"]["name"] == "Jane Smith"
    assert pop["customer"]["tier"] == "proactive"
    assert [p["notes"] for p in pop["customer"]["interactions"]] == ["earlier call 0", "earlier call 1"]
    await console.wait_state("reserved")

    await answer_hang_up_and_dispose(console, call, pop, "resolved", "Changed the delivery address.")
    await stack.services.bus.drain()

    rows = await new_interactions(sessions)
    assert len(rows) == 1
    row = rows[0]
    assert (row.call_id, row.customer_id, row.agent_id) == (call.call_id, customer.id, agent.id)
    assert row.queue_id is not None
    assert row.arrived_at <= row.offered_at <= row.answered_at <= row.ended_at
    assert (row.disposition, row.notes) == ("resolved", "Changed the delivery address.")
    assert stack.sim.truth[call.call_id].answered_by == "PJSIP/agent1"
    events = [name for _, name, _ in row.timeline]
    assert events[0] == "Newchannel" and events[-1] == "Hangup" and "BridgeEnter" in events
    async with sessions() as session:
        legs = (await session.scalars(select(InteractionLeg).where(InteractionLeg.call_id == call.call_id))).all()
    assert [(leg.agent_device, leg.agent_id) for leg in legs] == [("PJSIP/agent1", agent.id)]
    async with sessions() as session:
        audit = (await session.scalars(select(AuditLog))).all()
    assert [(a.actor_id, a.action, a.entity, a.entity_id, a.reason) for a in audit] == [
        (agent.id, "view", "customer", str(customer.id), f"screen pop for call {call.call_id}")]
    assert 0 < legs[0].talk_seconds <= (row.ended_at - row.answered_at).total_seconds() + 0.5
    await console.close()


async def test_unknown_caller_pops_unknown_and_the_interaction_has_no_customer(stack):
    await stack.add_agent("bob", "PJSIP/agent2")
    console = await stack.console("bob")

    call, pop = await take_call(stack, console, "+12025550143", "")

    assert pop["customer"] is None
    assert pop["caller_number"] == "+12025550143"
    await answer_hang_up_and_dispose(console, call, pop, "wrong-number", "")
    await stack.services.bus.drain()

    rows = await new_interactions(stack.services.sessions)
    assert [(r.call_id, r.customer_id, r.disposition) for r in rows] == [(call.call_id, None, "wrong-number")]
    assert rows[0].answered_at is not None
    async with stack.services.sessions() as session:
        assert (await session.scalars(select(AuditLog))).all() == []  # no customer record was shown
    await console.close()


async def test_call_waits_in_queue_until_an_agent_is_ready(stack):
    await stack.add_agent("carol", "PJSIP/agent3")
    console = await stack.console("carol")
    await console.wait_state("paused")
    call = stack.sim.place_call("+33142685300", "Marie Curie")
    await asyncio.sleep(0.3)
    assert console.events["screen_pop"].empty()
    assert call.moh  # the caller hears music while waiting

    assert (await console.call("ready"))["ok"]
    pop = await console.next("screen_pop")
    assert pop["call_id"] == call.call_id
    assert call.t_ringing is not None or call.agent is None  # the pop is out; the phone rings after it
    await console.close()


async def test_caller_hanging_up_in_queue_is_stored_as_unanswered(stack):
    call = stack.sim.place_call("+4915112345678", "Max Mustermann")
    await asyncio.sleep(0.2)
    call.caller_hangup()
    await asyncio.wait_for(call.finished.wait(), 5)
    await stack.services.bus.drain()

    rows = await new_interactions(stack.services.sessions)
    assert len(rows) == 1
    assert rows[0].answered_at is None and rows[0].agent_id is None and rows[0].ended_at is not None
    assert stack.sim.truth[call.call_id].abandoned


async def test_pop_reaches_the_agent_before_the_phone_rings(stack):
    await stack.add_agent("dave", "PJSIP/agent4")
    console = await stack.console("dave")

    def tap(name, headers):
        if name == "Newstate" and ("ChannelStateDesc", "Ringing") in headers:
            console.received.append("phone ringing")

    stack.sim.taps.append(tap)
    call, pop = await take_call(stack, console, "+441632960102", "")
    await asyncio.wait_for(_until(lambda: "phone ringing" in console.received), 5)
    assert console.received.index("screen_pop") < console.received.index("phone ringing")
    call.caller_hangup()
    await console.close()


async def _until(predicate, step: float = 0.01):
    while not predicate():
        await asyncio.sleep(step)


@pytest.mark.parametrize("event", ["answer", "hangup", "disposition"])
async def test_an_agent_cannot_act_on_another_agents_call(stack, event):
    await stack.add_agent("alice", "PJSIP/agent1")
    await stack.add_agent("bob", "PJSIP/agent2")
    alice = await stack.console("alice")
    bob = await stack.console("bob")
    call, pop = await take_call(stack, alice, "+441632960103", "")

    reply = await bob.call(event, {"call_id": pop["call_id"], "disposition": "resolved", "notes": ""})

    assert reply["ok"] is False and reply["id"] == "not-your-call"
    call.caller_hangup()
    await alice.close()
    await bob.close()


async def test_disposition_outside_the_list_is_refused_and_the_agent_stays_in_wrap_up(stack):
    await stack.add_agent("alice", "PJSIP/agent1")
    console = await stack.console("alice")
    call, pop = await take_call(stack, console, "+441632960104", "")
    assert (await console.call("answer", {"call_id": pop["call_id"]}))["ok"]
    await console.wait_call_state("answered")
    await asyncio.wait_for(call.bridged.wait(), 5)
    call.caller_hangup()
    await console.wait_call_state("wrap_up")

    reply = await console.call("disposition", {"call_id": pop["call_id"], "disposition": "<script>", "notes": ""})

    assert reply["ok"] is False and reply["id"] == "bad-disposition"
    assert "disposition" in reply["error"]
    assert stack.services.router.agents[1].state == "wrap_up"
    await console.close()


async def test_caller_hanging_up_while_the_phone_rings_frees_the_agent(stack):
    await stack.add_agent("alice", "PJSIP/agent1")
    console = await stack.console("alice")
    call, pop = await take_call(stack, console, "+441632960105", "")
    await _until(lambda: call.t_ringing is not None)

    call.caller_hangup()

    assert (await console.wait_call_state("ended"))["call_id"] == pop["call_id"]
    await console.wait_state("available")
    await asyncio.wait_for(call.finished.wait(), 5)
    await stack.services.bus.drain()
    rows = await new_interactions(stack.services.sessions)
    assert [(r.call_id, r.agent_id, r.answered_at) for r in rows] == [(call.call_id, None, None)]
    assert rows[0].offered_at is not None


async def test_a_phone_that_rings_out_pauses_its_agent_and_the_next_agent_gets_the_call(aiohttp_server, tmp_path):
    stack = await start_stack(aiohttp_server, sqlite_url(tmp_path), routing={"ring_timeout": 1})
    await stack.add_agent("alice", "PJSIP/agent1")
    await stack.add_agent("bob", "PJSIP/agent2")
    alice, bob = await stack.console("alice"), await stack.console("bob")
    for console in (alice, bob):
        await console.wait_state("paused")
        assert (await console.call("ready"))["ok"]
    call = stack.sim.place_call("+441632960106", "")

    first = await asyncio.wait_for(_first_pop(alice, bob), 5)
    missed = await first.wait_call_state("missed", timeout=5)  # nobody answered in 1 s
    paused = await first.wait_state("paused")
    second = bob if first is alice else alice
    pop = await second.next("screen_pop", timeout=5)

    assert missed["call_id"] == pop["call_id"] == call.call_id
    assert paused["reason"] == "no answer"
    call.caller_hangup()
    await stack.close_consoles()


async def _first_pop(*consoles):
    while True:
        for console in consoles:
            if not console.events["screen_pop"].empty():
                await console.events["screen_pop"].get()
                return console
        await asyncio.sleep(0.01)
