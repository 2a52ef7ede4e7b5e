"""Calls that move between agents end up as the right interaction, with one leg per agent.

The stack runs as in production: the console answers, the PBX facade transfers
and holds through AMI, the simulator's phones answer and hang up, and the
store is read at the end.
"""

import asyncio

from sqlalchemy import select

from contactcentre.crm.models import Interaction, InteractionLeg
from contactcentre.telephony.commands import PbxCommands
from tests.integration.test_walking_skeleton import take_call


async def until(predicate, timeout: float = 10.0):
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.02)


async def answered_call(stack, username: str, device: str, number: str):
    await stack.add_agent(username, device)
    console = await stack.console(username)
    call, pop = await take_call(stack, console, number, "")
    assert (await console.call("answer", {"call_id": pop["call_id"]}))["ok"]
    await console.wait_state("on_call")
    await asyncio.wait_for(call.bridged.wait(), 5)
    return console, call


def channel_on(stack, call, device: str) -> str:
    tracked = stack.services.tracker.calls[call.call_id].channel_on(device)
    assert tracked is not None, f"no channel on {device}"
    return tracked.name


async def stored(stack, call_id: str):
    await stack.services.bus.drain()
    async with stack.services.sessions() as session:
        interaction = await session.scalar(select(Interaction).where(Interaction.call_id == call_id))
        legs = (await session.scalars(select(InteractionLeg).where(InteractionLeg.call_id == call_id)
                                      .order_by(InteractionLeg.joined_at))).all()
    return interaction, legs


async def test_blind_transfer_gives_one_interaction_with_a_leg_for_each_agent(stack):
    sim = stack.sim
    console, call = await answered_call(stack, "alice", "PJSIP/agent1", "+441632960301")
    pbx = PbxCommands(stack.services.ami)
    await asyncio.sleep(0.2)

    await pbx.blind_transfer(channel_on(stack, call, "PJSIP/agent1"), "xfer", "2003")
    await console.wait_state("wrap_up")  # alice's part is over
    await until(lambda: any(n.startswith("PJSIP/agent3-") for n in sim.channels))
    agent3 = next(n for n in sim.channels if n.startswith("PJSIP/agent3-"))
    sim.answer(agent3)
    await until(lambda: "PJSIP/agent3" in sim.truth[call.call_id].talked_to)
    await asyncio.sleep(0.2)
    sim.phone_hangup(agent3)
    await asyncio.wait_for(call.finished.wait(), 5)

    interaction, legs = await stored(stack, call.call_id)
    assert interaction.ended_at is not None and interaction.answered_at is not None
    assert [leg.agent_device for leg in legs] == ["PJSIP/agent1", "PJSIP/agent3"]
    assert legs[0].agent_id == stack.services.router.agents[1].agent_id and legs[1].agent_id is None
    assert all(leg.talk_seconds > 0.1 for leg in legs)
    assert legs[0].left_at <= legs[1].joined_at  # alice left before the second agent came
    assert sim.truth[call.call_id].talked_to == ["PJSIP/agent1", "PJSIP/agent3"]


async def test_hold_and_resume_are_counted_on_the_agents_leg(stack):
    console, call = await answered_call(stack, "alice", "PJSIP/agent1", "+441632960302")
    pbx = PbxCommands(stack.services.ami)

    held = await pbx.hold(call.caller.name)  # the customer hears music, the agent waits
    assert held.peer == channel_on(stack, call, "PJSIP/agent1")
    await asyncio.sleep(0.3)
    await pbx.resume(held)
    await until(lambda: call.caller.bridge is not None)
    await asyncio.sleep(0.2)
    stack.sim.phone_hangup(held.peer)
    await asyncio.wait_for(call.finished.wait(), 5)

    interaction, legs = await stored(stack, call.call_id)
    assert [leg.agent_device for leg in legs] == ["PJSIP/agent1"]
    assert interaction.ended_at is not None
    assert 0.25 < legs[0].hold_seconds < 2 and legs[0].talk_seconds > 0.15


async def test_a_hold_from_the_agents_phone_is_counted_on_the_agents_leg(stack):
    console, call = await answered_call(stack, "alice", "PJSIP/agent1", "+441632960303")
    phone = channel_on(stack, call, "PJSIP/agent1")

    stack.sim.phone_hold(phone)  # the desk phone's hold key: a re-INVITE, no AMI action of ours
    await asyncio.sleep(0.3)
    stack.sim.phone_unhold(phone)
    await asyncio.sleep(0.2)
    stack.sim.phone_hangup(phone)
    await asyncio.wait_for(call.finished.wait(), 5)

    _, legs = await stored(stack, call.call_id)
    assert [leg.agent_device for leg in legs] == ["PJSIP/agent1"]
    assert 0.25 < legs[0].hold_seconds < 2 and legs[0].talk_seconds > 0.15


async def test_an_agent_who_hangs_up_with_the_customer_on_hold_is_not_left_on_the_call(stack):
    console, call = await answered_call(stack, "alice", "PJSIP/agent1", "+441632960304")
    pbx = PbxCommands(stack.services.ami)
    held = await pbx.hold(call.caller.name)
    await until(lambda: call.moh)
    await asyncio.sleep(0.3)

    stack.sim.phone_hangup(held.peer)  # the agent puts the phone down without taking the call back

    await console.wait_state("wrap_up")
    await asyncio.wait_for(call.finished.wait(), 10)  # the customer went on to the survey, then was done
    interaction, legs = await stored(stack, call.call_id)
    assert interaction.ended_at is not None
    assert 0.25 < legs[0].hold_seconds < 2  # the hold ended with the agent's leg


async def test_attended_transfer_counts_the_consulted_agent_only_once_the_caller_is_with_them(stack):
    sim = stack.sim
    sim.auto_answer = 0.1  # the consulted phone picks up by itself
    console, call = await answered_call(stack, "alice", "PJSIP/agent1", "+441632960303")
    pbx = PbxCommands(stack.services.ami)
    alice_channel = channel_on(stack, call, "PJSIP/agent1")

    await pbx.attended_transfer(alice_channel, "2004")
    await until(lambda: any(n.startswith("PJSIP/agent4-") for n in sim.channels))
    await asyncio.sleep(0.3)
    assert stack.services.tracker.calls[call.call_id].handled_by == ["PJSIP/agent1"]  # only consulting so far
    sim.phone_hangup(alice_channel)  # alice hangs up: the transfer completes
    await until(lambda: "PJSIP/agent4" in stack.services.tracker.calls[call.call_id].handled_by)
    agent4 = next(n for n in sim.channels if n.startswith("PJSIP/agent4-"))
    sim.phone_hangup(agent4)
    await asyncio.wait_for(call.finished.wait(), 5)

    _, legs = await stored(stack, call.call_id)
    assert [leg.agent_device for leg in legs] == ["PJSIP/agent1", "PJSIP/agent4"]
    assert legs[0].hold_seconds > 0  # Asterisk holds the caller while alice consults
