"""The simulator sends what a real Asterisk 22 sends for the same call.

Reference: agi-ivr call 2 in ../shared/ami-captures (FastAGI answers, EXEC
Dial rings agent2, the agent answers, talks and hangs up, the script ends).
The same call is made in the simulator and the events are compared per
channel: the same event types in the same order, with the same header names.
"""

import asyncio
from collections import defaultdict

from contactcentre.config import AgiSettings, AmiSettings
from contactcentre.telephony.agi.server import AgiServer
from contactcentre.telephony.ami.client import AmiClient
from contactcentre.telephony.ami.protocol import iter_messages
from contactcentre.telephony.simulator.pbx import SimulatedPbx
from tests.captures import capture

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

    server = AgiServer(AgiSettings(host="127.0.0.1", port=0, command_timeout=5), {"inbound": script})
    await server.start()
    sim = SimulatedPbx("cc", "s", f"agi://127.0.0.1:{server.port}/inbound", auto_answer=0.05)
    await sim.start("127.0.0.1", 0)
    events = []
    ami = AmiClient(AmiSettings(host="127.0.0.1", port=sim.ami.port, username="cc", secret="s"))
    ami.add_handler(lambda message: events.append((message.name, message.headers)))
    await ami.start()  # what goes over the wire, read as the server reads it
    call = sim.place_call("+12025550143", "John Doe")
    await asyncio.wait_for(call.bridged.wait(), 5)
    call.agent_hangup()
    await asyncio.wait_for(call.finished.wait(), 5)
    await ami.send("Ping")  # every event before it has been read
    await ami.close()
    await sim.close()
    await server.close()
    return per_channel(events)


async def test_simulated_call_matches_the_real_asterisk_call_event_for_event():
    real = captured_call_two()
    simulated = await simulated_call()
    for role in ("caller", "agent"):
        assert [name for name, _ in simulated[role]] == [name for name, _ in real[role]], role
        for (name, sim_headers), (_, real_headers) in zip(simulated[role], real[role]):
            assert sim_headers == real_headers, f"{role} {name}"
