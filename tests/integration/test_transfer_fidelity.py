"""Transfers in the simulator send what a real Asterisk 22 sent for the same transfers.

Reference: transfers-hold.ami calls 1-5 in ../shared/ami-captures (a BlindTransfer,
a Redirect of the caller, an Atxfer completed by the transferer hanging up, an Atxfer
then CancelAtxfer, and a hold from the agent's phone: a SIP re-INVITE, no AMI action).
The same call is made in the simulator through PbxCommands (the hold: the phone's
re-INVITE, `SimulatedPbx.phone_hold`), and
the events are compared per channel role (caller, first agent, second agent, Local
;1 and ;2) and for the events that name no channel (BlindTransfer, BridgeMerge ...):
the same event names in the same order, with the same header names.

Left out: what comes from FastAGI or RTP in one run and not the other
(queue events, AGIExec, Newexten, VarSet, RTCP), and events with no channel that
every call has anyway (BridgeCreate/Destroy, DeviceStateChange). The captured calls
were queue calls; here AGI `EXEC Dial` rings the agent, so the first agent's
NewConnectedLine comes before its Ringing (as app_dial sends it, see agi-ivr.ami)
rather than after (app_queue): the first agent's NewConnectedLine while it rings is
not compared.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict

import pytest

from contactcentre.telephony.ami.protocol import iter_messages
from contactcentre.telephony.commands import PbxCommands
from contactcentre.telephony.simulator.pbx import SimulatedPbx
from tests.captures import capture
from tests.support import simulator_with_script

NOT_COMPARED = {"VarSet", "Newexten", "RTCPSent", "RTCPReceived", "QueueMemberStatus", "AgentCalled", "AgentConnect",
                "AgentComplete", "QueueCallerJoin", "QueueCallerLeave", "AGIExecStart", "AGIExecEnd",
                "DeviceStateChange", "SuccessfulAuth", "FullyBooted", "BridgeCreate", "BridgeDestroy"}
# Linkedid (= uniqueid of the caller's channel) of each transfers-hold call.
CAPTURED = {"blind": "1795621798.0", "redirect": "1795621821.3", "attended": "1795621847.6",
            "cancelled": "1795621874.11", "phone hold": "1795621893.16"}


def lanes(events) -> dict[str, list[tuple[str, tuple[str, ...]]]]:
    """(event, header names) per role; agents are numbered in the order their channels appear."""
    out: dict[str, list] = defaultdict(list)
    agents: list[str] = []
    for name, headers in events:
        if name in NOT_COMPARED:
            continue
        values = dict(headers)
        channel = values.get("Channel") or values.get("DestChannel")
        if channel is None:
            role = "no channel"
        elif channel.startswith("PJSIP/carrier"):
            role = "caller"
        elif channel.startswith("Local/"):
            role = "Local " + channel[-2:]
        else:
            if channel not in agents:
                agents.append(channel)
            role = f"agent {agents.index(channel) + 1}"
        if role == "agent 1" and name == "NewConnectedLine" and not any(n == "BridgeEnter" for n, _ in out[role]):
            continue  # sent while ringing, by app_queue after Ringing, by app_dial before (see the docstring)
        out[role].append((name, tuple(k for k, _ in headers)))
    return out


def captured(kind: str):
    """Every event from the call's first Newchannel to its last event (the calls did not overlap)."""
    messages = [m for m in iter_messages(capture("transfers-hold.ami")) if m.kind == "event"]
    linkedid = CAPTURED[kind]
    start = next(i for i, m in enumerate(messages) if m.name == "Newchannel" and m.get("Uniqueid") == linkedid)
    end = max(i for i, m in enumerate(messages) if m.get("Linkedid") == linkedid)
    return lanes((m.name, m.headers) for m in messages[start:end + 1])


async def until(predicate, timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)


def phones(sim: SimulatedPbx, prefix: str) -> list[str]:
    return [name for name, channel in sim.channels.items() if name.startswith(prefix) and channel.bridge]


async def transfer(sim, pbx: PbxCommands, call, kind: str) -> None:
    agent = call.agent.name
    if kind == "blind":
        await pbx.blind_transfer(agent, "xfer", "2003")
        await until(lambda: "PJSIP/agent3" in sim.truth[call.call_id].talked_to)
    elif kind == "redirect":
        await pbx.redirect(call.caller.name, "xfer", "2004")
        await until(lambda: "PJSIP/agent4" in sim.truth[call.call_id].talked_to)
    elif kind == "attended":
        await pbx.attended_transfer(agent, "2003", "xfer")
        await until(lambda: phones(sim, "PJSIP/agent3"))
        await pbx.hangup(agent)  # the transferer hangs up: the transfer completes
        await until(lambda: not any(name.startswith("Local/") for name in sim.channels))
    elif kind == "phone hold":
        sim.phone_hold(agent)  # the agent's phone holds the caller, then takes the call back
        await until(lambda: call.moh)
        sim.phone_unhold(agent)
        await until(lambda: not call.moh)
    else:
        await pbx.attended_transfer(agent, "2004", "xfer")
        await until(lambda: phones(sim, "PJSIP/agent4"))
        await pbx.cancel_attended_transfer(agent)
        await until(lambda: not any(name.startswith(("Local/", "PJSIP/agent4")) for name in sim.channels))


async def simulated(kind: str):
    async def script(session):
        await session.answer()
        await session.exec("StartMusicOnHold", "default")  # the caller waits with music, as in the queue
        await session.exec("Dial", "PJSIP/agent1,20,tT")
        await session.get_variable("DIALSTATUS")

    async with simulator_with_script(script) as (sim, ami, events):
        call = sim.place_call("+441632960301", "Jane Smith", "0800100100")
        await asyncio.wait_for(call.bridged.wait(), 5)
        await transfer(sim, PbxCommands(ami), call, kind)
        sim.phone_hangup(call.agent.name)  # whoever the caller ends up with hangs up
        await asyncio.wait_for(call.finished.wait(), 5)
    return lanes(events)


@pytest.mark.parametrize("kind", list(CAPTURED))
async def test_simulated_transfer_matches_the_real_asterisk_transfer_event_for_event(kind):
    real = captured(kind)
    sim = await simulated(kind)
    assert set(sim) == set(real)
    for role in real:
        assert [name for name, _ in sim[role]] == [name for name, _ in real[role]], role
        for (name, sim_headers), (_, real_headers) in zip(sim[role], real[role], strict=True):
            assert sim_headers == real_headers, f"{role} {name}"
