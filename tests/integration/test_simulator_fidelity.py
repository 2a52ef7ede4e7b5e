"""The simulator sends what a real Asterisk 22 sends for the same call.

Reference: agi-ivr call 2 in ../shared/ami-captures (FastAGI answers, EXEC
Dial rings agent2, the agent answers, talks and hangs up, the script ends).
The same call is made in the simulator and the events are compared per
channel: the same event types in the same order, with the same header names.
With Dial()'s g option the PBX sends the same events; only the EXEC's result
differs (0, and the caller stays in the AGI session: app_dial.c, OPT_GO_ON).
Calls 1 and 4 are the reference for the caller's keys during GET DATA.
"""

import asyncio
from collections import defaultdict

import pytest

from contactcentre.telephony.ami.protocol import iter_messages
from tests.captures import capture
from tests.support import simulator_with_script

COMPARED = {"Newchannel", "Newstate", "NewConnectedLine", "DialBegin", "DialState", "DialEnd", "BridgeEnter",
            "BridgeLeave", "HangupRequest", "SoftHangupRequest", "Hangup"}
KEYS = {"AGIExecStart", "AGIExecEnd", "DTMFBegin", "DTMFEnd"}


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


def captured(linkedid: str) -> list[tuple[str, list[tuple[str, str]]]]:
    return [(m.name, m.headers) for m in iter_messages(capture("agi-ivr.ami"))
            if m.kind == "event" and m.get("Linkedid") == linkedid]


async def simulated_call(dial_options: str):
    results = {}

    async def script(session):
        await session.answer()
        results["dial"] = (await session.exec("Dial", f"PJSIP/agent2,20,{dial_options}")).result
        results["status"] = await session.get_variable("DIALSTATUS")
        results["prompt"] = (await session.stream_file("custom/survey-intro")).result  # a survey would start here

    async with simulator_with_script(script) as (sim, ami, events):
        call = sim.place_call("+12025550143", "John Doe")
        await asyncio.wait_for(call.bridged.wait(), 5)
        call.agent_hangup()
        await asyncio.wait_for(call.finished.wait(), 5)
    return per_channel(events), results


@pytest.mark.parametrize(("dial_options", "dial_result"), [("tT", -1), ("tTg", 0)])
async def test_simulated_call_matches_the_real_asterisk_call_event_for_event(dial_options, dial_result):
    real = per_channel(captured("1795622983.2"))
    simulated, results = await simulated_call(dial_options)
    for role in ("caller", "agent"):
        assert [name for name, _ in simulated[role]] == [name for name, _ in real[role]], role
        for (name, sim_headers), (_, real_headers) in zip(simulated[role], real[role]):
            assert sim_headers == real_headers, f"{role} {name}"
    # the capture's EXEC Dial gave -1 and the caller's channel stayed up for the next commands
    assert results == {"dial": dial_result, "status": "ANSWER", "prompt": 0}


def get_data_span(events, caller: str) -> list[tuple[str, tuple[str, ...], str]]:
    """(event, header names, digit) from GET DATA's AGIExecStart to its AGIExecEnd on the caller's channel."""
    span, inside = [], False
    for name, headers in events:
        values = dict(headers)
        if name not in KEYS or not values.get("Channel", "").startswith(caller):
            continue
        inside = inside or (name == "AGIExecStart" and values["Command"].startswith("GET DATA"))
        if inside:
            span.append((name, tuple(k for k, _ in headers), values.get("Digit", "")))
        if inside and name == "AGIExecEnd":
            return span
    return span


@pytest.mark.parametrize(("linkedid", "command", "keys"), [
    ("1795622977.0", ("custom/enter-digits", 8000, 4), "1234"),
    ("1795622995.5", ("custom/enter-digits", 6000, 4), "2#"),
])
async def test_the_callers_keys_come_as_the_real_asterisks_dtmf_events(linkedid, command, keys):
    async def script(session):
        await session.answer()
        await session.get_data(*command)

    async with simulator_with_script(script) as (sim, ami, events):
        call = sim.place_call("+441632960201", "Jane Smith", keys=[keys])
        await asyncio.wait_for(call.finished.wait(), 5)

    real = get_data_span(captured(linkedid), "PJSIP/carrier")
    assert [digit for name, _, digit in real if name == "DTMFEnd"] == list(keys)
    assert get_data_span(events, "PJSIP/carrier") == real
