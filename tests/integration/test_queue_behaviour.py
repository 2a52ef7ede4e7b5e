"""What the simulated app_queue does beyond the captured calls: ring timeout and retry, wrap-up, ringinuse,
joinempty, the Queue() timeout argument, member action errors, and Queue() behind the shipped dialplan.

Small queues.conf and extensions.conf texts keep the timers short; everything goes over real sockets.
"""

from __future__ import annotations

import asyncio
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contactcentre.telephony.ami.client import AmiError
from contactcentre.telephony.simulator import dialplan, queues_conf
from contactcentre.telephony.simulator.channels import RINGING
from contactcentre.telephony.simulator.pbx import SimCall, SimulatedPbx
from tests.support import no_agi, simulator_with_script, until

QUEUES = """
[general]
autofill = yes

[short](!)
timeout = 1
retry = 0
ringinuse = no
setqueuevar = yes

[rr](short)
strategy = rrmemory
member => PJSIP/agent1,0,Alice Agent
member => PJSIP/agent2,0,Bob Agent

[wrap](short)
wrapuptime = 1
member => PJSIP/agent1,0,Alice Agent

[nobody](short)
joinempty = no
member => PJSIP/agent9,0,Nobody  ; not an endpoint: its device is invalid
"""

EXTENSIONS = """
[from-carrier]
exten => 100,1,Answer()
 same => n,Queue(rr,tT,,,900)
 same => n,Hangup()
exten => 200,1,Answer()
 same => n,Queue(wrap)
exten => 300,1,Answer()
 same => n,Queue(nobody)
 same => n,Hangup()
exten => 400,1,Answer()
 same => n,Queue(rr,tT,,,1)
 same => n,Hangup()
exten => 500,1,Dial(PJSIP/agent1,30)
exten => 600,1,Answer()
 same => n,Queue(rr)

[xfer]
exten => 2002,1,Dial(PJSIP/agent2,20)
"""


def options() -> dict:
    return {"endpoints": {"agent1", "agent2"}, "dialplan": dialplan.parse(EXTENSIONS),
            "queues": queues_conf.parse(QUEUES)}


def named(events, name: str) -> list[dict[str, str]]:
    return [dict(headers) for event, headers in events if event == name]


def variable(events, channel: str, name: str) -> str | None:
    values = [h["Value"] for h in named(events, "VarSet") if h["Channel"] == channel and h["Variable"] == name]
    return values[-1] if values else None


async def ringing(call: SimCall) -> str:
    await until(lambda: call.agent is not None and call.agent.state == RINGING)
    return call.agent.name


async def test_a_member_who_does_not_answer_gets_agent_ring_no_answer_and_the_next_member_rings():
    async with simulator_with_script(no_agi, auto_answer=None, **options()) as (sim, _ami, events):
        call = sim.place_call("+441632960101", "Jane Smith", "100")
        first = await ringing(call)
        await until(lambda: call.agent is not None and call.agent.name != first, timeout=5)
        sim.answer(await ringing(call))
        await asyncio.wait_for(call.bridged.wait(), 5)
        call.caller_hangup()
        await asyncio.wait_for(call.finished.wait(), 5)

    assert [h["Interface"] for h in named(events, "AgentCalled")] == ["PJSIP/agent1", "PJSIP/agent2"]
    assert [h["Interface"] for h in named(events, "AgentRingNoAnswer")] == ["PJSIP/agent1"]
    assert [h["DialStatus"] for h in named(events, "DialEnd")] == ["NOANSWER", "ANSWER"]
    assert named(events, "AgentComplete")[0]["Reason"] == "caller"
    assert [line.split("|")[4] for line in sim.queues.queue_log] == [
        "QUEUESTART", "ENTERQUEUE", "RINGNOANSWER", "CONNECT", "COMPLETECALLER"]


async def test_a_phone_already_on_a_call_is_not_rung_with_ringinuse_no():
    async with simulator_with_script(no_agi, auto_answer=None, **options()) as (sim, _ami, events):
        direct = sim.place_call("+441632960101", "", "500")  # agent1 talks to a direct call
        sim.answer(await ringing(direct))
        await asyncio.wait_for(direct.bridged.wait(), 5)
        queued = sim.place_call("+441632960102", "", "100")
        assert (await ringing(queued)).startswith("PJSIP/agent2-")
        queued.caller_hangup()
        direct.caller_hangup()
        await asyncio.wait_for(queued.finished.wait(), 5)

    statuses = [(h["Interface"], h["Status"]) for h in named(events, "QueueMemberStatus") if h["Queue"] == "rr"]
    assert statuses[:3] == [("PJSIP/agent1", "6"), ("PJSIP/agent1", "2"), ("PJSIP/agent2", "6")]


async def test_wrap_up_keeps_a_member_from_the_next_caller_until_it_is_over():
    async with simulator_with_script(no_agi, auto_answer=None, **options()) as (sim, _ami, _events):
        first = sim.place_call("+441632960101", "", "200")
        sim.answer(await ringing(first))
        await asyncio.wait_for(first.bridged.wait(), 5)
        first.agent_hangup()
        await asyncio.wait_for(first.finished.wait(), 5)
        ended = time.monotonic()
        second = sim.place_call("+441632960102", "", "200")
        await ringing(second)
        waited = time.monotonic() - ended
        second.caller_hangup()
        await asyncio.wait_for(second.finished.wait(), 5)

    assert 0.9 <= waited < 3  # wrapuptime = 1
    member = sim.queues.find("wrap").members[0]
    assert (member.calls, member.in_call) == (1, False)


async def test_joinempty_no_turns_callers_away_while_no_member_can_answer():
    async with simulator_with_script(no_agi, auto_answer=None, **options()) as (sim, _ami, events):
        call = sim.place_call("+441632960101", "", "300")
        await asyncio.wait_for(call.finished.wait(), 5)

    assert variable(events, call.caller.name, "QUEUESTATUS") == "JOINEMPTY"
    assert not named(events, "QueueCallerJoin")


async def test_the_queue_timeout_argument_sends_the_caller_on_with_queuestatus_timeout():
    async with simulator_with_script(no_agi, auto_answer=None, **options()) as (sim, ami, events):
        await ami.send("QueuePause", {"Interface": "PJSIP/agent1", "Paused": "true"})
        await ami.send("QueuePause", {"Interface": "PJSIP/agent2", "Paused": "true"})
        call = sim.place_call("+441632960101", "", "400")
        await asyncio.wait_for(call.finished.wait(), 5)

    assert variable(events, call.caller.name, "QUEUESTATUS") == "TIMEOUT"
    assert [e for e, h in events if h and dict(h).get("Channel") == call.caller.name
            and e in ("QueueCallerJoin", "QueueCallerLeave", "QueueCallerAbandon", "SoftHangupRequest")] == [
        "QueueCallerJoin", "QueueCallerLeave", "SoftHangupRequest"]  # then the dialplan's own Hangup()
    assert sim.queues.queue_log[-1].split("|")[4] == "EXITWITHTIMEOUT"


@pytest.mark.parametrize("did, transfers", [("100", True), ("600", False)])
async def test_an_agent_may_start_an_attended_transfer_only_with_queue_option_t(did, transfers):
    async with simulator_with_script(no_agi, auto_answer=None, **options()) as (sim, ami, events):
        call = sim.place_call("+441632960101", "", did)
        sim.answer(await ringing(call))
        await asyncio.wait_for(call.bridged.wait(), 5)
        await ami.send("Atxfer", {"Channel": call.agent.name, "Exten": "2002", "Context": "xfer"})
        await until(lambda: sum(e == "DTMFEnd" for e, _ in events) == 6)  # *2 then 2002, either way
        consulting = any(name.startswith("Local/2002@xfer-") for name in sim.channels)

    assert consulting is transfers


@pytest.mark.parametrize("action, keys, message", [
    ("QueueAdd", {"Queue": "rr", "Interface": "PJSIP/agent1"}, "Unable to add interface: Already there"),
    ("QueueAdd", {"Queue": "nosuch", "Interface": "PJSIP/agent1"}, "Unable to add interface to queue: No such queue"),
    ("QueueAdd", {"Interface": "PJSIP/agent1"}, "'Queue' not specified."),
    ("QueueRemove", {"Queue": "rr", "Interface": "PJSIP/agent1"}, "Member not dynamic"),
    ("QueueRemove", {"Queue": "rr"}, "Need 'Queue' and 'Interface' parameters."),
    ("QueuePause", {"Interface": "PJSIP/agent1"}, "Need 'Interface' and 'Paused' parameters."),
    ("QueuePenalty", {"Interface": "PJSIP/agent7", "Penalty": "1"}, "Invalid interface, queuename or penalty"),
    ("QueueLog", {"Event": "AGENTLOGIN"}, "Need 'Queue' and 'Event' parameters."),
])
async def test_member_actions_refuse_as_app_queue_does(action, keys, message):
    async with simulator_with_script(no_agi, **options()) as (_sim, ami, _events):
        with pytest.raises(AmiError) as refused:
            await ami.send(action, keys)
    assert refused.value.message == message


async def test_queue_status_of_an_unknown_queue_is_an_empty_list():
    async with simulator_with_script(no_agi, **options()) as (_sim, ami, _events):
        items = await ami.send_list("QueueStatus", {"Queue": "nosuch"})
    assert items == []


async def test_the_shipped_dialplan_falls_back_to_app_queue_when_fastagi_is_down():
    """config/asterisk/extensions.conf: AGISTATUS FAILURE -> Answer, Queue(support) -> an agent's phone rings."""
    sim = SimulatedPbx("cc", "s", "agi://127.0.0.1:9/inbound", auto_answer=0.05, endpoints={"agent1", "agent2"})
    seen: list[str] = []
    sim.taps.append(lambda name, headers: seen.append(name))
    await sim.start("127.0.0.1", 0)
    try:
        call = sim.place_call("+441632960101", "Jane Smith", "0800200200")
        await asyncio.wait_for(call.bridged.wait(), 5)
        call.agent_hangup()
        await asyncio.wait_for(call.finished.wait(), 5)
    finally:
        await sim.close()
    assert sim.truth[call.call_id].answered_by in ("PJSIP/agent1", "PJSIP/agent2")
    assert [n for n in seen if n.startswith(("Queue", "Agent"))] == [
        "QueueCallerJoin", "AgentCalled", "QueueMemberStatus", "QueueMemberStatus", "QueueCallerLeave",
        "AgentConnect", "AgentComplete", "QueueMemberStatus"]


async def test_fastagi_exec_queue_returns_minus_one_when_the_agent_hangs_up():
    results = {}

    async def script(session):
        await session.answer()
        results["queue"] = (await session.exec("Queue", "support,tT,,,120")).result
        results["status"] = await session.get_variable("QUEUESTATUS")

    async with simulator_with_script(script, auto_answer=0.05) as (sim, _ami, _events):
        call = sim.place_call("+441632960101", "Jane Smith")
        await asyncio.wait_for(call.bridged.wait(), 5)
        call.agent_hangup()
        await asyncio.wait_for(call.finished.wait(), 5)

    assert results == {"queue": -1, "status": None}  # as agi-ivr.ami call 1 and the README say


# A caller joins, the n-th waiting caller hangs up, or a member takes the caller at the head of the queue.
QUEUE_STEPS = st.lists(st.one_of(st.just(("join", 0)), st.tuples(st.just("leave"), st.integers(0, 5)),
                                 st.just(("serve", 0))), max_size=12)


@settings(max_examples=25, deadline=None)
@given(steps=QUEUE_STEPS)
def test_queue_positions_stay_one_to_n_whatever_callers_do(steps):
    asyncio.run(_positions_stay_one_to_n(steps))


async def _positions_stay_one_to_n(steps) -> None:
    sim = SimulatedPbx("cc", "s", "agi://127.0.0.1:9/inbound", auto_answer=None, **options())
    seen: list[tuple[str, dict[str, str]]] = []
    sim.taps.append(lambda name, headers: seen.append((name, dict(headers))))
    queue = sim.queues.find("rr")
    for member in queue.members:  # nobody takes a call unless a step says so
        sim.queues.set_paused(queue, member, True, "")
    calls: list[SimCall] = []
    waiting: list[str] = []  # the queue as the events tell it
    try:
        for step, index in steps:
            await _take_step(sim, queue, calls, waiting, step, index)
            _follow(seen, waiting)
            assert [entry.channel.name for entry in queue.entries] == waiting
    finally:
        await sim.close()


async def _take_step(sim: SimulatedPbx, queue, calls: list[SimCall], waiting: list[str], step: str,
                     index: int) -> None:
    if step == "join":
        calls.append(sim.place_call(f"+4416329601{len(calls):02d}", "", "100"))
        await until(lambda: calls[-1].moh)
    elif step == "leave" and waiting:
        leaving = next(c for c in calls if c.caller.name == waiting[index % len(waiting)])
        leaving.caller_hangup()
        await asyncio.wait_for(leaving.finished.wait(), 5)
    elif step == "serve" and waiting:
        head = next(c for c in calls if c.caller.name == waiting[0])
        sim.queues.set_paused(queue, queue.members[0], False, "")
        sim.answer(await ringing(head))
        await asyncio.wait_for(head.bridged.wait(), 5)
        sim.queues.set_paused(queue, queue.members[0], True, "")
        head.agent_hangup()
        await asyncio.wait_for(head.finished.wait(), 5)


def _follow(seen: list[tuple[str, dict[str, str]]], waiting: list[str]) -> None:
    """Apply the queue's join and leave events to `waiting`, checking each position and count."""
    while seen:
        name, values = seen.pop(0)
        if values.get("Queue") != "rr" or name not in ("QueueCallerJoin", "QueueCallerLeave"):
            continue
        if name == "QueueCallerJoin":
            waiting.append(values["Channel"])
            assert values["Position"] == values["Count"] == str(len(waiting))
        else:
            assert values["Position"] == str(waiting.index(values["Channel"]) + 1)
            waiting.remove(values["Channel"])
            assert values["Count"] == str(len(waiting))
