"""Click to dial from the agent console, over real sockets: consent first, then the PBX, then the store."""

from __future__ import annotations

import asyncio

from sqlalchemy import select

from contactcentre.crm.models import AuditLog, InteractionLeg, ServiceTier
from tests.support import (
    add_consent,
    add_customer,
    add_do_not_call,
    add_open_ticket,
    new_interactions,
    until,
)

JANE = "+441632960101"


async def jane_with_an_open_ticket(stack):
    jane = await add_customer(stack.services.sessions, "Jane", "Smith", JANE, ServiceTier.REACTIVE)
    await add_open_ticket(stack.services.sessions, jane.id, "router keeps dropping")
    return jane


async def ready_agent_and_jane(stack):
    """Jane with an open ticket, and alice's console, ready."""
    await jane_with_an_open_ticket(stack)
    await stack.add_agent("alice", "PJSIP/agent1")
    console = await stack.console("alice")
    await console.wait_state("paused")
    assert (await console.call("ready"))["ok"]
    return console


def carrier_legs(stack) -> list[str]:
    return [name for name in stack.sim.channels if name.startswith("PJSIP/carrier-")]


async def dial_and_pick_up(stack, console, number: str = JANE) -> tuple[dict, dict]:
    """Dial, see the pop, pick the agent's phone up: returns (the dial's ack, the pop)."""
    reply = await console.call("dial", {"number": number})
    assert reply["ok"], reply
    pop = await console.next("screen_pop")
    assert (await console.call("answer", {"call_id": pop["call_id"]}))["ok"]
    await console.wait_call_state("dialling")
    return reply, pop


async def test_agent_calls_a_customer_about_their_open_ticket_and_the_call_is_stored_as_outbound(stack):
    sessions = stack.services.sessions
    jane = await jane_with_an_open_ticket(stack)
    agent = await stack.add_agent("alice", "PJSIP/agent1", name="Alice Agent")
    console = await stack.console("alice")
    await console.wait_state("paused")
    stack.sim.customer_answer = None  # the test says when the customer picks up

    reply, pop = await dial_and_pick_up(stack, console, "01632 960101")  # typed in national form

    assert reply["number"] == JANE and reply["call_id"] == pop["call_id"]
    assert (pop["direction"], pop["outbound"]["purpose"], pop["customer"]["name"]) == ("outbound", "service",
                                                                                       "Jane Smith")
    await console.wait_state("dialling")
    await until(lambda: carrier_legs(stack))
    customer_leg = stack.sim.channels[carrier_legs(stack)[0]]
    assert (customer_leg.caller_num, customer_leg.connected_num, customer_leg.linkedid) == (
        JANE, "+441632960000", pop["call_id"])  # the centre's caller ID is what the customer sees
    stack.sim.answer(customer_leg.name)
    await console.wait_call_state("answered")
    await console.wait_state("on_call")
    await asyncio.sleep(0.2)
    assert (await console.call("hangup", {"call_id": pop["call_id"]}))["ok"]
    await console.wait_call_state("wrap_up")
    assert (await console.call("disposition", {"call_id": pop["call_id"], "disposition": "resolved",
                                               "notes": "Router replaced."}))["ok"]
    await console.wait_state("available")
    await until(lambda: not stack.sim.channels)
    await stack.services.bus.drain()

    [row] = await new_interactions(sessions)
    assert (row.call_id, row.direction, row.caller_number, row.customer_id, row.agent_id, row.queue_id) == (
        pop["call_id"], "outbound", JANE, jane.id, agent.id, None)
    assert row.arrived_at <= row.offered_at <= row.answered_at <= row.ended_at
    assert (row.disposition, row.notes, row.end_reason) == ("resolved", "Router replaced.", None)
    events = [name for _, name, _ in row.timeline]
    assert events[0] == "Newchannel" and "DialBegin" in events and events[-1] == "Hangup"
    async with sessions() as session:
        legs = (await session.scalars(select(InteractionLeg).where(InteractionLeg.call_id == row.call_id))).all()
        audit = (await session.scalars(select(AuditLog))).all()
    assert [(leg.agent_device, leg.agent_id) for leg in legs] == [("PJSIP/agent1", agent.id)]
    assert 0.1 < legs[0].talk_seconds <= (row.ended_at - row.answered_at).total_seconds() + 0.5
    assert [(a.actor_id, a.action, a.entity_id) for a in audit] == [(agent.id, "view", str(jane.id))]


async def test_a_number_on_the_do_not_call_list_is_not_dialled_and_the_console_hears_why(stack):
    jane = await jane_with_an_open_ticket(stack)
    await add_consent(stack.services.sessions, jane.id, "service", True)
    await add_do_not_call(stack.services.sessions, JANE, "asked on the phone")
    await stack.add_agent("alice", "PJSIP/agent1")
    console = await stack.console("alice")
    await console.wait_state("paused")

    reply = await console.call("dial", {"number": JANE})

    assert reply == {"ok": False, "id": "dial-refused", "reason": "on the do-not-call list (asked on the phone)",
                     "error": f"{JANE} may not be dialled: on the do-not-call list (asked on the phone)"}
    assert (await console.call("ready"))["ok"]  # the agent's state never left not ready
    assert stack.sim.channels == {}  # nothing was sent to the PBX
    assert await new_interactions(stack.services.sessions) == []


async def test_an_objection_a_stranger_and_no_open_matter_are_refused_with_their_reasons(stack):
    sessions = stack.services.sessions
    jane = await jane_with_an_open_ticket(stack)
    await add_consent(sessions, jane.id, "service", False, source="ivr")
    await add_customer(sessions, "John", "Doe", "+441632960102", ServiceTier.BASIC)
    await stack.add_agent("alice", "PJSIP/agent1")
    console = await stack.console("alice")
    await console.wait_state("paused")

    reasons = [(await console.call("dial", {"number": number}))["reason"]
               for number in (JANE, "+441632960102", "+441632960999")]

    assert reasons[0].startswith("customer AC-960101 objected to service calls by phone on ")
    assert reasons[1].endswith("a service call needs an open matter")
    assert reasons[2] == "no customer holds this number, and service calls go only to a customer's own number"
    refused = await console.call("dial", {"number": "+441632960102", "customer_id": jane.id})
    assert refused["reason"] == "it is not one of this customer's numbers"
    bad = await console.call("dial", {"number": "call me"})
    assert (bad["ok"], bad["id"], bad["error"].startswith("number: 'call me' is not a phone number")) == (
        False, "bad-request", True)
    assert stack.sim.channels == {}


async def test_a_busy_customer_is_an_attempt_the_agent_wraps_up(stack):
    console = await ready_agent_and_jane(stack)
    stack.sim.customer_answer = None

    _, pop = await dial_and_pick_up(stack, console)
    await until(lambda: carrier_legs(stack))
    stack.sim.phone_hangup(carrier_legs(stack)[0], 17)  # user busy

    state = await console.wait_call_state("unreached")
    assert state["reason"] == "the customer's line was busy"
    await console.wait_state("wrap_up")
    assert (await console.call("disposition", {"call_id": pop["call_id"], "disposition": "no-answer"}))["ok"]
    await console.wait_state("available")
    await until(lambda: not stack.sim.channels)
    await stack.services.bus.drain()
    [row] = await new_interactions(stack.services.sessions)
    assert (row.direction, row.answered_at, row.end_reason, row.disposition) == (
        "outbound", None, "the customer's line was busy", "no-answer")


async def test_an_agent_phone_nobody_picks_up_pauses_the_agent_and_dials_nobody(aiohttp_server, tmp_path):
    from tests.support import sqlite_url, start_stack

    stack = await start_stack(aiohttp_server, sqlite_url(tmp_path), routing={"ring_timeout": 1})
    try:
        console = await ready_agent_and_jane(stack)

        assert (await console.call("dial", {"number": JANE}))["ok"]
        missed = await console.wait_call_state("missed", timeout=10)

        assert missed["reason"] == "the agent's phone was not picked up"
        paused = await console.wait_state("paused")
        assert paused["reason"] == "no answer"
        assert carrier_legs(stack) == []
        await stack.services.bus.drain()
        [row] = await new_interactions(stack.services.sessions)
        assert (row.direction, row.answered_at, row.end_reason) == (
            "outbound", None, "the agent's phone was not picked up")
    finally:
        await stack.close_consoles()


async def test_an_agent_with_a_call_offered_cannot_dial(stack):
    console = await ready_agent_and_jane(stack)
    call = stack.sim.place_call("+12025550143", "")
    await console.next("screen_pop")

    reply = await console.call("dial", {"number": JANE})

    assert reply == {"ok": False, "error": "cannot dial while reserved", "id": "bad-state"}
    call.caller_hangup()
