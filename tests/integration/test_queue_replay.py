"""A simulated queue day, recorded by the flight recorder and replayed, comes to the simulator's own truth.

The simulator knows who really answered whom (`sim.truth`, kept apart from the
AMI events it sends); `replay()` knows only the recorded AMI bytes. The day
mixes what app_queue does: a ringall call through Local members, rrmemory and
leastrecent calls, a caller abandoning while queued, one hanging up while the
phone rings, a blind transfer out of a queue call, and calls ended by the
agent and by the caller.
"""

from __future__ import annotations

import asyncio
from collections import Counter

from contactcentre.telephony.commands import PbxCommands
from contactcentre.telephony.recorder import FlightRecorder, replay
from contactcentre.telephony.simulator.channels import RINGING
from contactcentre.telephony.simulator.pbx import SimCall, SimulatedPbx
from tests.support import capture_pbx, no_agi, simulator_with_script, until


def phone(sim: SimulatedPbx, endpoint: str) -> str:
    return next(name for name in sim.channels if name.startswith(f"PJSIP/{endpoint}-"))


async def answered(sim: SimulatedPbx, number: str, did: str) -> SimCall:
    call = sim.place_call(number, "", did)
    await until(lambda: call.agent is not None and call.agent.state == RINGING)
    sim.answer(call.agent.name)
    await asyncio.wait_for(call.bridged.wait(), 5)
    return call


async def a_queue_day(sim: SimulatedPbx, ami) -> None:
    # helpdesk rings both Local members; agent2 answers and agent1's pair is hung up.
    ringall = sim.place_call("+441632960501", "Jane Smith", "0800100300")
    await until(lambda: sum(c.state == RINGING for n, c in sim.channels.items() if n.startswith("PJSIP/")) == 2)
    sim.answer(phone(sim, "agent2"))
    await asyncio.wait_for(ringall.bridged.wait(), 5)
    await until(lambda: not any(n.startswith("PJSIP/agent1-") for n in sim.channels))
    support = await answered(sim, "+441632960101", "0800100100")  # rrmemory: agent1, the one free
    queued = sim.place_call("+33142685300", "Luis Garcia", "0800100100")
    await until(lambda: queued.moh)
    queued.caller_hangup()  # both support agents talk: abandoned while queued
    sales = await answered(sim, "+12025550142", "0800100200")  # leastrecent: agent3
    ringing = sim.place_call("+12025550199", "Tom Brown", "0800100200")
    await until(lambda: ringing.agent is not None and ringing.agent.state == RINGING)
    ringing.caller_hangup()  # agent4's phone rings: abandoned all the same
    await asyncio.wait_for(ringing.finished.wait(), 5)
    sim.auto_answer = 0.05
    await PbxCommands(ami).blind_transfer(support.agent.name, "xfer", "2004")
    await until(lambda: "PJSIP/agent4" in sim.truth[support.call_id].talked_to)
    ringall.caller_hangup()
    support.agent_hangup()
    sales.agent_hangup()
    for call in (ringall, support, queued, sales, ringing):
        await asyncio.wait_for(call.finished.wait(), 5)


async def test_replay_of_a_recorded_queue_day_matches_the_simulators_truth(tmp_path):
    recorder = FlightRecorder(tmp_path / "queue-day.ccami")
    async with simulator_with_script(no_agi, auto_answer=None, recorder=recorder,
                                     **capture_pbx(helpdesk=True)) as (sim, ami, _):
        await a_queue_day(sim, ami)
    recorder.close()

    result = replay([tmp_path / "queue-day.ccami"])
    truth = list(sim.truth.values())
    assert all(call.ended for call in truth)
    assert (result.calls, result.answered, result.abandoned) == (
        len(truth), sum(call.answered_by is not None for call in truth), sum(call.abandoned for call in truth))
    assert result.agents == dict(Counter(member for call in truth for member in call.talked_to))
    assert result.agents == {"Local/2002@agents/n": 1, "PJSIP/agent1": 1, "PJSIP/agent3": 1, "PJSIP/agent4": 1}
    assert (result.calls, result.answered, result.abandoned) == (5, 3, 2)
