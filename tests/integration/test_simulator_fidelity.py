"""The simulator sends what a real Asterisk 22 sends for the same call.

Reference: agi-ivr call 2 in ../shared/ami-captures (FastAGI answers, EXEC
Dial rings agent2, the agent answers, talks and hangs up, the script ends).
The same call is made in the simulator and the events are compared per
channel: the same event types in the same order, with the same header names.
"""

import asyncio
from collections import defaultdict

from contactcentre.telephony.ami.protocol import iter_messages
from tests.captures import capture
from tests.support import simulator_with_script

COMPARED = {"Newchannel", "Newstate", "NewConnectedLine", "DialBegin", "DialState", "DialEnd", "BridgeEnter",
            "BridgeLeave", "HangupRequest", "SoftHangupRequest", "Hangup"}


def per_channel(events):
    """(role, [(event, header names)]) for the trunk leg and the agent leg."""
    lanes = defaultdict(list)
    for name, headers in events:
        if name not in COMPARED:
            continue
        channel = dict(headers)["Channel"]
        role = "caller" if channel.startswith("PJSIP/carrier") else "agent"
        lanes[role].append((name, tuple(k for k, _ in headers)))
    return lanes


def captured_call_two():
    events = []
    for message in iter_messages(capture("agi-ivr.ami")):
        if message.kind == "event" and message.get("Linkedid") == "1795622983.2":
            events.append((message.name, message.headers))
    return per_channel(events)


async def simulated_call():
    async def script(session):
        await session.answer()
        await session.exec("Dial", "PJSIP/agent2,20,tT")
        await session.get_variable("DIALSTATUS")

    async with simulator_with_script(script) as (sim, ami, events):
        call = sim.place_call("+12025550143", "John Doe")
        await asyncio.wait_for(call.bridged.wait(), 5)
        call.agent_hangup()
        await asyncio.wait_for(call.finished.wait(), 5)
    return per_channel(events)


async def test_simulated_call_matches_the_real_asterisk_call_event_for_event():
    real = captured_call_two()
    simulated = await simulated_call()
    for role in ("caller", "agent"):
        assert [name for name, _ in simulated[role]] == [name for name, _ in real[role]], role
        for (name, sim_headers), (_, real_headers) in zip(simulated[role], real[role]):
            assert sim_headers == real_headers, f"{role} {name}"
