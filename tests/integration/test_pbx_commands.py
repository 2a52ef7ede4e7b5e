"""PbxCommands against the simulator, over real sockets: each call-control action, what the
simulated PBX then did (its channels, bridges and truth) and the events the AMI client received."""

from __future__ import annotations

import asyncio

import pytest

from contactcentre.config import AgiSettings, AmiSettings
from contactcentre.telephony.agi.server import AgiServer
from contactcentre.telephony.ami.client import AmiClient, AmiError
from contactcentre.telephony.commands import OriginateFailed, PbxCommands, SpyMode
from contactcentre.telephony.simulator.pbx import SimulatedPbx

AGENTS = {"agent1", "agent2", "agent3", "agent4", "super1"}


class Rig:
    """A simulated PBX whose inbound calls a tiny AGI script sends to agent1, an AMI client that
    keeps every event, and the facade under test."""

    def __init__(self, sim: SimulatedPbx, ami: AmiClient, agi_done: list[str]):
        self.sim = sim
        self.ami = ami
        self.pbx = PbxCommands(ami)
        self.events = []
        self.agi_done = agi_done  # uniqueids whose AGI script ran to its end
        ami.add_handler(self.events.append)

    async def talking_call(self, number: str = "+441632960101", name: str = "Jane Smith"):
        call = self.sim.place_call(number, name)
        await asyncio.wait_for(call.bridged.wait(), 5)
        return call

    def named(self, name: str, **headers: str):
        return [e for e in self.events if e.name == name and all(e.get(k) == v for k, v in headers.items())]

    async def settled(self) -> None:
        await self.ami.send("Ping")  # every event sent before the Pong has been read

    def peers(self, channel: str) -> list[str]:
        bridge = self.sim.channels[channel].bridge
        return sorted(c.name for c in bridge.others(self.sim.channels[channel])) if bridge else []

    def channels(self, prefix: str) -> list[str]:
        return [name for name in self.sim.channels if name.startswith(prefix)]


async def until(predicate, timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)


@pytest.fixture
async def rig():
    agi_done: list[str] = []

    async def script(session):
        await session.answer()
        await session.exec("Dial", "PJSIP/agent1,20,tT")
        await session.get_variable("DIALSTATUS")
        agi_done.append(session.uniqueid)

    server = AgiServer(AgiSettings(host="127.0.0.1", port=0, command_timeout=30), {"inbound": script})
    await server.start()
    sim = SimulatedPbx("cc", "s", f"agi://127.0.0.1:{server.port}/inbound", auto_answer=0.05,
                       customer_answer=0.05, endpoints=AGENTS)
    await sim.start("127.0.0.1", 0)
    ami = AmiClient(AmiSettings(host="127.0.0.1", port=sim.ami.port, username="cc", secret="s", action_timeout=3))
    await ami.start()
    yield Rig(sim, ami, agi_done)
    await ami.close()
    await sim.close()
    await server.close()


async def test_originate_rings_the_phone_and_runs_the_dialplan_once_it_answers(rig):
    made = await rig.pbx.originate("PJSIP/agent2", context="xfer", exten="2003", caller_id='"Callback" <+441632960111>',
                                   variables={"CC_CALL": "callback-7"})

    assert made.channel.startswith("PJSIP/agent2-")
    await until(lambda: rig.channels("PJSIP/agent3-") and rig.peers(made.channel))
    assert rig.peers(made.channel) == rig.channels("PJSIP/agent3-")  # xfer 2003 dialled agent3 and bridged them
    await rig.settled()
    response = rig.named("OriginateResponse")[0]
    assert (response["Response"], response["Reason"], response["Uniqueid"]) == ("Success", "4", made.uniqueid)
    assert rig.named("VarSet", Channel=made.channel, Variable="CC_CALL")[0]["Value"] == "callback-7"
    assert rig.named("Newchannel", Channel=made.channel)[0]["CallerIDNum"] == "+441632960111"


async def test_originate_that_fails_raises_with_asterisks_reason(rig):
    with pytest.raises(OriginateFailed) as failed:
        await rig.pbx.originate("PJSIP/agent9", context="xfer", exten="2001")  # no such endpoint

    assert failed.value.reason == 0
    assert "PJSIP/agent9" in str(failed.value)
    await rig.settled()
    assert not rig.named("Newchannel")  # as in resync.ami: no channel is made at all
    assert rig.named("OriginateResponse")[0]["Uniqueid"] == "<unknown>"


async def test_originate_not_answered_in_time_fails_with_reason_3(rig):
    rig.sim.auto_answer = None  # the phone just rings

    with pytest.raises(OriginateFailed) as failed:
        await rig.pbx.originate("PJSIP/agent2", context="xfer", exten="2001", timeout=0.2)

    assert failed.value.reason == 3
    assert not rig.channels("PJSIP/agent2-")


async def test_originate_waits_for_the_phone_to_be_picked_up(rig):
    rig.sim.auto_answer = None
    originating = asyncio.create_task(rig.pbx.originate("PJSIP/agent2", context="xfer", exten="8000"))
    await until(lambda: rig.channels("PJSIP/agent2-"))
    await asyncio.sleep(0.1)
    assert not originating.done()  # still ringing

    rig.sim.answer(rig.channels("PJSIP/agent2-")[0])

    made = await asyncio.wait_for(originating, 5)
    await until(lambda: rig.sim.channels[made.channel].moh_class == "default")  # xfer 8000: music


async def test_originate_to_a_local_channel_answers_when_its_second_half_is_answered(rig):
    made = await rig.pbx.originate("Local/2002@xfer", context="cc-hold", exten="s")

    assert made.channel.startswith("Local/2002@xfer-") and made.channel.endswith(";1")
    second = made.channel[:-1] + "2"
    await until(lambda: rig.sim.channels[made.channel].moh_class == "default")
    assert rig.peers(second) == rig.channels("PJSIP/agent2-")  # ;2 ran xfer 2002: agent2 answered
    await rig.pbx.hangup(made.channel)
    await until(lambda: not rig.sim.channels)  # one half hanging up takes the other, and its call, along


async def test_call_agent_then_number_rings_the_agent_then_dials_the_customer(rig):
    made = await rig.pbx.call_agent_then_number("PJSIP/agent1", "+441632960222", '"Contact centre" <+441632960000>')

    await until(lambda: rig.peers(made.channel))
    customer = rig.peers(made.channel)[0]
    assert customer.startswith("PJSIP/carrier-")
    await rig.settled()
    dial = rig.named("DialBegin", Channel=made.channel)[0]
    assert (dial["DestChannel"], dial["DialString"]) == (customer, "+441632960222@carrier")
    assert rig.named("Newexten", Channel=made.channel)[0]["Context"] == "from-agents"
    with pytest.raises(ValueError):
        await rig.pbx.call_agent_then_number("PJSIP/agent1", "2001,1,System(rm)", "x")


async def test_redirect_sends_the_caller_elsewhere_and_hangs_up_the_agent_it_leaves(rig):
    call = await rig.talking_call()
    agent = call.agent.name

    await rig.pbx.redirect(call.caller.name, "xfer", "2002")

    await until(lambda: rig.channels("PJSIP/agent2-") and rig.peers(call.caller.name))
    assert rig.peers(call.caller.name) == rig.channels("PJSIP/agent2-")
    assert agent not in rig.sim.channels
    assert rig.sim.truth[call.call_id].talked_to == ["PJSIP/agent1", "PJSIP/agent2"]
    await until(lambda: call.caller.uniqueid in rig.agi_done)  # the AGI session saw a hangup and ended
    await rig.settled()
    assert rig.named("Newexten", Channel=call.caller.name, Context="xfer")[0]["Application"] == "Dial"
    assert not rig.named("HangupRequest", Channel=agent)  # Asterisk hangs the left-alone leg up quietly


async def test_redirect_with_an_extra_channel_moves_both_and_hangs_up_neither(rig):
    call = await rig.talking_call()
    agent = call.agent.name

    await rig.pbx.redirect(call.caller.name, "cc-hold", "s", extra_channel=agent)

    await until(lambda: call.moh)
    assert agent in rig.sim.channels and rig.sim.channels[agent].application == "MusicOnHold"
    with pytest.raises(AmiError, match="Channel does not exist: PJSIP/nobody-00000000"):
        await rig.pbx.redirect("PJSIP/nobody-00000000", "xfer", "2001")


async def test_hangup_ends_the_agents_leg_and_the_callers_dialplan_carries_on(rig):
    call = await rig.talking_call()
    agent = call.agent.name

    await rig.pbx.hangup(agent)

    await asyncio.wait_for(call.finished.wait(), 5)
    assert call.caller.uniqueid in rig.agi_done
    await rig.settled()
    assert rig.named("Hangup", Channel=agent)[0]["Cause"] == "16"
    assert rig.sim.truth[call.call_id].answered_by == "PJSIP/agent1"
    with pytest.raises(AmiError, match="No such channel"):
        await rig.pbx.hangup(agent)


async def test_hold_plays_music_to_the_customer_and_resume_joins_them_again(rig):
    call = await rig.talking_call()
    agent = call.agent.name

    held = await rig.pbx.hold(call.caller.name)

    assert (held.channel, held.peer, held.context) == (call.caller.name, agent, "cc-hold")
    await until(lambda: call.moh and rig.sim.channels[agent].application == "Wait")
    assert rig.sim.channels[call.caller.name].bridge is None
    assert rig.sim.channels[agent].variables["CC_HELD"] == call.caller.name

    await rig.pbx.resume(held)

    await until(lambda: rig.peers(agent) == [call.caller.name])
    assert not call.moh
    await rig.settled()
    assert [e.name for e in rig.events if e.get("Channel") == call.caller.name and e.name.startswith("MusicOnHold")] \
        == ["MusicOnHoldStart", "MusicOnHoldStop"]
    assert not rig.named("Hangup", Channel=agent)  # nobody was hung up on the way
    rig.sim.phone_hangup(agent)  # Bridge()'s F option: the customer goes on to the survey, then hangs up
    await asyncio.wait_for(call.finished.wait(), 5)
    await rig.settled()
    assert rig.named("Newexten", Channel=call.caller.name, Context="cc-survey")[0]["Application"] == "AGI"
    assert not rig.named("Newexten", Channel=agent, Extension="release")  # resume dropped the hangup handler
    assert rig.named("HangupHandlerPop", Channel=agent) and not rig.named("HangupHandlerRun", Channel=agent)


async def test_an_agent_who_hangs_up_while_the_customer_is_on_hold_sends_them_to_the_survey(rig):
    call = await rig.talking_call()
    agent = call.agent.name
    await rig.pbx.hold(call.caller.name)
    await until(lambda: call.moh and rig.sim.channels[agent].application == "Wait")

    rig.sim.phone_hangup(agent)  # the agent puts the phone down without taking the call back

    await until(lambda: not call.moh)  # wait's hangup handler takes the customer off the music
    await asyncio.wait_for(call.finished.wait(), 5)
    await rig.settled()
    assert [e["Application"] for e in rig.named("Newexten", Channel=agent, Context="cc-hold", Extension="release")] \
        == ["GotoIf", "ChannelRedirect"]
    # Sent to cc-survey (the redirect's Newexten names what the customer was running, as Asterisk's does).
    assert [e["Application"] for e in rig.named("Newexten", Channel=call.caller.name, Context="cc-survey")] \
        == ["MusicOnHold"]
    assert rig.sim.truth[call.call_id].ended and not rig.named("Hangup", Channel=call.caller.name, Context="cc-hold")
    events = [e.name for e in rig.events if e.get("Channel") == agent]
    # Announced as Asterisk does, and run on the way out: after the phone hung up, before the leg's Hangup.
    assert rig.named("HangupHandlerPush", Channel=agent)[0]["Handler"] == "cc-hold,release,1"
    assert events.index("HangupRequest") < events.index("HangupHandlerRun") < events.index("Hangup")


async def test_a_held_customer_sent_elsewhere_stays_there_when_the_waiting_agent_hangs_up(rig):
    call = await rig.talking_call()
    agent = call.agent.name
    await rig.pbx.hold(call.caller.name)
    await until(lambda: call.moh and rig.sim.channels[agent].application == "Wait")
    await rig.pbx.redirect(call.caller.name, "xfer", "2002")  # taken off hold to another agent instead
    await until(lambda: rig.channels("PJSIP/agent2-") and rig.peers(call.caller.name))

    rig.sim.phone_hangup(agent)  # the first agent, still waiting in silence, hangs up

    await until(lambda: agent not in rig.sim.channels)
    await rig.settled()
    assert rig.peers(call.caller.name) == rig.channels("PJSIP/agent2-")  # still talking to agent2
    assert [e["Application"] for e in rig.named("Newexten", Channel=agent, Extension="release")] == ["GotoIf"]
    assert not rig.named("Newexten", Channel=call.caller.name, Context="cc-survey")


async def test_a_customer_who_hangs_up_on_hold_takes_the_agents_silent_leg_along(rig):
    call = await rig.talking_call()
    agent = call.agent.name
    await rig.pbx.hold(call.caller.name)
    await until(lambda: call.moh and rig.sim.channels[agent].application == "Wait")
    assert rig.sim.channels[call.caller.name].variables["CC_HOLDER"] == agent

    call.caller_hangup()  # tired of the music

    await asyncio.wait_for(call.finished.wait(), 5)  # not an hour of silence for the agent
    await rig.settled()
    assert rig.named("Newexten", Channel=call.caller.name, Extension="drop")[0]["Application"] == "SoftHangup"
    assert rig.named("SoftHangupRequest", Channel=agent) and rig.named("Hangup", Channel=agent)
    # ... and the agent's own handler, run as its leg ends, finds no customer to send to the survey.
    assert not rig.named("Newexten", Channel=call.caller.name, Context="cc-survey")


async def test_the_customer_hanging_up_after_resume_ends_the_agents_leg_too(rig):
    call = await rig.talking_call()
    agent = call.agent.name
    held = await rig.pbx.hold(call.caller.name)
    await until(lambda: call.moh)
    await rig.pbx.resume(held)
    await until(lambda: rig.peers(agent) == [call.caller.name])

    call.caller_hangup()

    await asyncio.wait_for(call.finished.wait(), 5)
    await rig.settled()
    assert rig.named("Hangup", Channel=agent)
    assert not rig.named("Newexten", Context="cc-survey")  # F is for the bridger hanging up, not the customer


async def test_hold_of_a_channel_not_in_a_call_is_refused(rig):
    rig.sim.auto_answer = None
    call = rig.sim.place_call("+441632960101")  # the AGI rings agent1: the caller is not bridged yet
    await until(lambda: call.agent is not None)

    with pytest.raises(AmiError, match="not in a two-party call"):
        await rig.pbx.hold(call.caller.name)


async def test_blind_transfer_sends_the_caller_to_the_target_and_drops_the_agent(rig):
    call = await rig.talking_call()
    agent = call.agent.name

    await rig.pbx.blind_transfer(agent, "xfer", "2003")

    await until(lambda: rig.channels("PJSIP/agent3-") and rig.peers(call.caller.name))
    assert rig.peers(call.caller.name) == rig.channels("PJSIP/agent3-")
    assert agent not in rig.sim.channels
    await rig.settled()
    event = rig.named("BlindTransfer")[0]
    assert (event["TransfererChannel"], event["TransfereeChannel"], event["Extension"], event["IsExternal"]) == \
        (agent, call.caller.name, "2003", "Yes")
    with pytest.raises(AmiError, match="Channel specified does not exist"):
        await rig.pbx.blind_transfer(agent, "xfer", "2003")


async def test_attended_transfer_completes_when_the_transferer_hangs_up(rig):
    call = await rig.talking_call()
    agent = call.agent.name

    await rig.pbx.attended_transfer(agent, "2003")

    await until(lambda: any(rig.peers(c) for c in rig.channels("PJSIP/agent3-")))  # the target answered
    assert call.moh  # the caller waits with music while the agent consults
    target = rig.channels("PJSIP/agent3-")[0]
    await rig.pbx.hangup(agent)

    await until(lambda: rig.peers(call.caller.name) == [target] and not rig.channels("Local/"))
    assert not call.moh
    assert rig.sim.truth[call.call_id].talked_to == ["PJSIP/agent1", "PJSIP/agent3"]
    assert call.caller.uniqueid not in rig.agi_done  # the caller's Dial goes on, with agent3 now
    await rig.settled()
    event = rig.named("AttendedTransfer")[0]
    assert (event["OrigTransfererChannel"], event["TransfereeChannel"], event["DestType"]) == \
        (agent, call.caller.name, "Bridge")
    assert rig.named("BridgeEnter", Channel=target, SwapUniqueid=event["TransferTargetUniqueid"])


async def test_cancelled_attended_transfer_takes_the_agent_back_to_the_caller(rig):
    call = await rig.talking_call()
    agent = call.agent.name
    await rig.pbx.attended_transfer(agent, "2004")
    await until(lambda: any(rig.peers(c) for c in rig.channels("PJSIP/agent4-")))

    await rig.pbx.cancel_attended_transfer(agent)

    await until(lambda: not rig.channels("PJSIP/agent4-") and not rig.channels("Local/"))
    assert rig.peers(call.caller.name) == [agent]
    assert not call.moh
    assert rig.sim.truth[call.call_id].talked_to == ["PJSIP/agent1"]  # the consultation never met the caller
    await rig.settled()
    assert [e["Digit"] for e in rig.named("DTMFEnd", Channel=agent)] == list("*22004*1")
    assert rig.named("Unhold", Channel=agent)


@pytest.mark.parametrize("mode, options", [(SpyMode.LISTEN, "q"), (SpyMode.WHISPER, "qw"), (SpyMode.BARGE, "qB")])
async def test_spy_rings_the_supervisor_into_chanspy_on_the_agents_channel(rig, mode, options):
    call = await rig.talking_call()
    agent = call.agent.name

    made = await rig.pbx.spy("PJSIP/super1", agent, mode)

    await until(lambda: made.channel in rig.sim.spies)
    assert rig.sim.spies[made.channel] == (agent, options)
    assert rig.sim.channels[made.channel].application_data == f"{agent},{options}"
    await rig.settled()
    start = rig.named("ChanSpyStart")[0]
    assert (start["SpyerChannel"], start["SpyeeChannel"]) == (made.channel, agent)
    assert rig.named("OriginateResponse")[0]["Application"] == "ChanSpy"


async def test_recording_starts_and_stops_with_mixmonitor(rig):
    call = await rig.talking_call()

    await rig.pbx.start_recording(call.caller.name, "call-42.wav")
    await rig.pbx.stop_recording(call.caller.name)

    recording = rig.sim.mixmonitor.recordings[0]
    assert (recording.channel, recording.filename) == (call.caller.name, "call-42.wav")
    assert recording.stopped is not None
    await rig.settled()
    assert [e.name for e in rig.events if e.name.startswith("MixMonitor")] == ["MixMonitorStart", "MixMonitorStop"]
    with pytest.raises(AmiError, match="Could not stop monitoring channel"):
        await rig.pbx.stop_recording(call.caller.name)


async def test_channel_id_names_the_originated_channel_and_so_the_whole_call(rig):
    made = await rig.pbx.call_agent_then_number("PJSIP/agent1", "+441632960222", '"Contact centre" <+441632960000>',
                                                call_id="cc-out-1234", number_timeout=7)

    assert made.uniqueid == "cc-out-1234"
    await until(lambda: rig.peers(made.channel))
    customer = rig.sim.channels[rig.peers(made.channel)[0]]
    assert (customer.linkedid, customer.connected_num) == ("cc-out-1234", "+441632960000")
    await rig.settled()
    assert rig.named("Newchannel", Channel=made.channel)[0]["Uniqueid"] == "cc-out-1234"
    assert rig.named("VarSet", Channel=made.channel, Variable="CC_RING_TIMEOUT")[0]["Value"] == "7"
    assert rig.named("DialBegin", Channel=made.channel)[0]["DialString"] == "+441632960222@carrier"


async def test_a_channel_id_in_use_or_too_long_is_refused_as_asterisk_refuses_it(rig):
    made = await rig.pbx.originate("PJSIP/agent2", context="xfer", exten="8000", channel_id="taken")

    with pytest.raises(OriginateFailed) as failed:
        await rig.pbx.originate("PJSIP/agent3", context="xfer", exten="8000", channel_id="taken")
    assert failed.value.reason == 0
    with pytest.raises(AmiError, match="Uniqueid length exceeds maximum of 149"):
        await rig.pbx.originate("PJSIP/agent3", context="xfer", exten="8000", channel_id="x" * 150)
    assert [c.uniqueid for c in rig.sim.channels.values() if c.name.startswith("PJSIP/agent")] == [made.uniqueid]


async def test_the_customer_rings_for_the_time_the_server_asks_then_dial_gives_up(rig):
    rig.sim.customer_answer = None  # the customer never picks up
    made = await rig.pbx.call_agent_then_number("PJSIP/agent1", "+441632960222", "<+441632960000>",
                                                number_timeout=1)

    await until(lambda: made.channel not in rig.sim.channels, timeout=5)
    await rig.settled()
    assert rig.named("DialEnd", Channel=made.channel)[0]["DialStatus"] == "NOANSWER"
