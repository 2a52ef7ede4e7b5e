"""The embedded PBX: an AMI server and a FastAGI client that behave as Asterisk 22.

Each simulated inbound call runs the dialplan the sample config/asterisk/
extensions.conf gives a real PBX: the trunk channel appears (`Newchannel`),
the dialplan hands it to FastAGI, and the server's commands (ANSWER, EXEC
StartMusicOnHold, EXEC Dial ...) produce the events a real Asterisk sends for
them, in the order ../shared/ami-captures/ shows. Agent phones ring until an
AMI `PJSIPNotify` (Event=talk) answers them, or `auto_answer` seconds pass;
an AMI `Hangup` ends a channel.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from contactcentre.telephony.ami.protocol import AmiMessage
from contactcentre.telephony.simulator.agi_client import run_agi
from contactcentre.telephony.simulator.ami_server import AmiServer, AmiSession
from contactcentre.telephony.simulator.channels import (
    CAUSE_TEXT,
    DOWN,
    RING,
    RINGING,
    UP,
    SimChannel,
    bridge_headers,
)

log = logging.getLogger(__name__)

IVR_DID = "0800200200"
EventTap = Callable[[str, list[tuple[str, str]]], None]


@dataclass
class CallTruth:
    """What really happened to a simulated call: the ground truth tests compare with."""

    call_id: str
    number: str
    answered_by: str | None = None  # device, e.g. PJSIP/agent1
    abandoned: bool = False
    ended: bool = False


class SimulatedPbx:
    def __init__(self, username: str, secret: str, agi_url: str, *, talk_limit: float = 600.0,
                 patience: float = 300.0, auto_answer: float | None = None):
        self.agi_url = agi_url
        self.talk_limit = talk_limit
        self.patience = patience
        self.auto_answer = auto_answer
        self.ami = AmiServer(username, secret, {
            "CoreShowChannels": self._action_core_show_channels,
            "Hangup": self._action_hangup,
            "PJSIPNotify": self._action_pjsip_notify,
        })
        self.channels: dict[str, SimChannel] = {}
        self.calls: dict[str, SimCall] = {}
        self.truth: dict[str, CallTruth] = {}
        self.taps: list[EventTap] = []
        self._epoch = int(time.time())
        self._uid = itertools.count()
        self._chan = itertools.count()
        self._tasks: set[asyncio.Task] = set()

    # -- lifecycle ------------------------------------------------------------

    async def start(self, host: str, port: int) -> None:
        await self.ami.start(host, port)
        log.info("PBX simulator: AMI on %s:%s, FastAGI to %s", host, self.ami.port, self.agi_url)

    async def close(self) -> None:
        for call in list(self.calls.values()):
            call.caller_hangup()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=2)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.ami.close()

    # -- calls ----------------------------------------------------------------

    def place_call(self, number: str, name: str = "", did: str = IVR_DID, *,
                   patience: float | None = None, talk_limit: float | None = None) -> SimCall:
        """A caller dials `did` from `number`; returns the call, which runs by itself."""
        caller = self.new_channel("PJSIP/carrier", number, name, "from-carrier", did, state=RING)
        call = SimCall(self, caller, did, patience or self.patience, talk_limit or self.talk_limit)
        self.calls[caller.uniqueid] = call
        self.truth[caller.uniqueid] = CallTruth(caller.uniqueid, number)
        task = asyncio.create_task(call.run(), name=f"sim-call-{caller.uniqueid}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return call

    def new_channel(self, device: str, number: str, name: str, context: str, exten: str, *,
                    state: int, linkedid: str | None = None) -> SimChannel:
        uniqueid = f"{self._epoch}.{next(self._uid)}"
        channel = SimChannel(f"{device}-{next(self._chan):08x}", uniqueid, linkedid or uniqueid, state,
                             number, name, context, exten, created=time.time())
        self.channels[channel.name] = channel
        self.emit("Newchannel", channel.headers(), privilege="call,all")
        return channel

    def emit(self, name: str, headers: list[tuple[str, str]], privilege: str = "call,all") -> None:
        full = [("Privilege", privilege), *headers]
        for tap in self.taps:
            tap(name, full)
        self.ami.broadcast(name, full)

    def channel_event(self, name: str, channel: SimChannel, *extra: tuple[str, str],
                      privilege: str = "call,all") -> None:
        self.emit(name, [*channel.headers(), *extra], privilege)

    def set_state(self, channel: SimChannel, state: int) -> None:
        channel.state = state
        self.channel_event("Newstate", channel)

    def destroy(self, channel: SimChannel, cause: int) -> None:
        if self.channels.pop(channel.name, None) is None:
            return
        self.channel_event("Hangup", channel, ("Cause", str(cause)), ("Cause-txt", CAUSE_TEXT.get(cause, "Unknown")))

    def device_state(self, device: str, state: str) -> None:
        self.emit("DeviceStateChange", [("Device", device), ("State", state)])

    def new_bridge_id(self) -> str:
        return str(uuid.uuid4())

    # -- AMI actions ------------------------------------------------------------

    async def _action_hangup(self, session: AmiSession, action: AmiMessage) -> None:
        name = action.get("Channel", "")
        channel = self.channels.get(name)
        if channel is None:
            session.respond(action, "Error", [("Message", "No such channel")])
            return
        session.respond(action, "Success", [("Message", "Channel Hungup")])
        cause = int(action.get("Cause") or 16)
        for call in self.calls.values():
            if call.caller is channel:
                call.caller_hangup(cause)
            elif call.agent is channel:
                call.agent_hangup(cause)

    async def _action_pjsip_notify(self, session: AmiSession, action: AmiMessage) -> None:
        endpoint = action.get("Endpoint", "")
        if not endpoint:
            session.respond(action, "Error", [("Message", "PJSIPNotify requires either an endpoint name, a SIP URI, "
                                                          "or a channel.  You must use only one of them.")])
            return
        session.respond(action, "Success", [("Message", "NOTIFY sent")])
        if "Event=talk" not in action.get_all("Variable"):
            return
        for call in self.calls.values():
            if call.agent is not None and call.agent.device == f"PJSIP/{endpoint}" and call.agent.state == RINGING:
                call.agent_answer()

    async def _action_core_show_channels(self, session: AmiSession, action: AmiMessage) -> None:
        session.respond(action, "Success", [("EventList", "start"), ("Message", "Channels will follow")])
        action_id = [("ActionID", action["ActionID"])] if action.get("ActionID") else []
        now = time.time()
        for channel in list(self.channels.values()):
            seconds = int(now - channel.created)
            session.send(("Event", "CoreShowChannel"), [
                *action_id, *channel.headers(), ("BridgeId", channel.bridge_id),
                ("Application", channel.application), ("ApplicationData", channel.application_data),
                ("Duration", f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"),
                ("BridgedChannel", ""), ("BridgedUniqueID", "")])
        session.send(("Event", "CoreShowChannelsComplete"), [
            *action_id, ("EventList", "Complete"), ("ListItems", str(len(self.channels)))])


class SimCall:
    """One caller: its trunk channel, its FastAGI session, and the agent leg it is dialled to."""

    def __init__(self, pbx: SimulatedPbx, caller: SimChannel, did: str, patience: float, talk_limit: float):
        self.pbx = pbx
        self.caller = caller
        self.did = did
        self.patience = patience
        self.talk_limit = talk_limit
        self.agent: SimChannel | None = None
        self.bridged = asyncio.Event()
        self.gone = asyncio.Event()  # the caller hung up (or was hung up)
        self.finished = asyncio.Event()  # every channel of the call is gone
        self.moh = False
        self._answer = asyncio.Event()
        self._agent_gone = asyncio.Event()
        self._agent_cause = 16
        self.t_first_event = time.perf_counter()
        self.t_ringing: float | None = None

    @property
    def call_id(self) -> str:
        return self.caller.linkedid

    # -- what the outside world does to the call --------------------------------

    def caller_hangup(self, cause: int = 16) -> None:
        if self.gone.is_set():
            return
        self.pbx.channel_event("HangupRequest", self.caller, ("Cause", str(cause)))
        self.stop_moh()
        self.gone.set()

    def agent_answer(self) -> None:
        self._answer.set()

    def agent_hangup(self, cause: int = 16) -> None:
        if self.agent is None or self._agent_gone.is_set():
            return
        self.pbx.channel_event("HangupRequest", self.agent, ("Cause", str(cause)))
        self._agent_cause = cause
        self._agent_gone.set()

    # -- dialplan ---------------------------------------------------------------

    async def run(self) -> None:
        pbx, caller = self.pbx, self.caller
        patience = asyncio.get_running_loop().call_later(self.patience, self._lose_patience)
        try:
            # The dialplan of config/asterisk/extensions.conf, context from-carrier.
            self._newexten(1, "NoOp", f"Inbound call to {self.did} from {caller.caller_num}")
            self._newexten(2, "AGI", pbx.agi_url)
            status = await run_agi(self)
            self._newexten(3, "NoOp", f"FastAGI ended: AGISTATUS={status}")
            self._newexten(4, "GotoIf", f'$["{status}" = "FAILURE"]?fallback')
            self._newexten(5, "Hangup", "")
            if not self.gone.is_set():
                pbx.channel_event("SoftHangupRequest", caller, ("Cause", "16"))
                self.gone.set()
        except Exception:
            log.exception("simulated call failed", extra={"call_id": self.call_id})
        finally:
            patience.cancel()
            if self.agent is not None:
                pbx.destroy(self.agent, 16)
            pbx.destroy(caller, 16)
            pbx.device_state("PJSIP/carrier", "NOT_INUSE")
            pbx.calls.pop(self.call_id, None)
            truth = pbx.truth[self.call_id]
            truth.ended = True
            truth.abandoned = truth.answered_by is None
            self.finished.set()

    def _lose_patience(self) -> None:
        if not self.bridged.is_set():
            self.caller_hangup()

    def _newexten(self, priority: int, application: str, data: str) -> None:
        self.caller.priority = priority
        self.caller.application, self.caller.application_data = application, data
        self.pbx.channel_event("Newexten", self.caller, ("Extension", self.caller.exten),
                               ("Application", application), ("AppData", data), privilege="dialplan,all")

    def answer(self) -> None:
        if self.caller.state != UP:
            self.pbx.set_state(self.caller, UP)
            self.pbx.device_state("PJSIP/carrier", "INUSE")

    def start_moh(self, music_class: str) -> None:
        if not self.moh:
            self.moh = True
            self.pbx.channel_event("MusicOnHoldStart", self.caller, ("Class", music_class))

    def stop_moh(self) -> None:
        if self.moh:
            self.moh = False
            self.pbx.channel_event("MusicOnHoldStop", self.caller)

    async def dial(self, device: str, timeout: float) -> tuple[int, str]:
        """Ring `device` (PJSIP/agent1); return (AGI result, DIALSTATUS) as app_dial would."""
        pbx, caller = self.pbx, self.caller
        if not device.startswith("PJSIP/") or not device[6:]:
            return 0, "CHANUNAVAIL"
        endpoint = device[6:]
        agent = pbx.new_channel(device, endpoint, endpoint, "from-agents", "s", state=DOWN, linkedid=caller.linkedid)
        self.agent = agent
        self._answer.clear()
        self._agent_gone.clear()
        agent.connected_num, agent.connected_name = caller.caller_num, caller.caller_name
        agent.exten = caller.exten
        pbx.channel_event("NewConnectedLine", agent)
        pbx.emit("DialBegin", [*caller.headers(), *agent.headers("Dest"), ("DialString", endpoint)])
        caller.connected_num, caller.connected_name = agent.caller_num, agent.caller_name
        pbx.channel_event("NewConnectedLine", caller)
        pbx.set_state(agent, RINGING)
        self.t_ringing = time.perf_counter()
        pbx.device_state(device, "RINGING")
        pbx.emit("DialState", [*caller.headers(), *agent.headers("Dest"), ("DialStatus", "RINGING")])
        auto = (asyncio.get_running_loop().call_later(pbx.auto_answer, self._answer.set)
                if pbx.auto_answer is not None else None)
        outcome = await _first({"answer": self._answer.wait(), "caller": self.gone.wait(),
                                "agent": self._agent_gone.wait()}, timeout)
        if auto is not None:
            auto.cancel()
        if outcome != "answer":
            status = {"caller": "CANCEL", "agent": "BUSY", None: "NOANSWER"}[outcome]
            pbx.emit("DialEnd", [*caller.headers(), *agent.headers("Dest"), ("DialStatus", status)])
            self.agent = None
            pbx.destroy(agent, {"CANCEL": 0, "BUSY": 17, "NOANSWER": 19}[status])
            pbx.device_state(device, "NOT_INUSE")
            return (-1 if status == "CANCEL" else 0), status
        return await self._talk(agent, device)

    async def _talk(self, agent: SimChannel, device: str) -> tuple[int, str]:
        pbx, caller = self.pbx, self.caller
        pbx.set_state(agent, UP)
        agent.exten = ""
        pbx.emit("DialEnd", [*caller.headers(), *agent.headers("Dest"), ("DialStatus", "ANSWER")])
        self.stop_moh()
        pbx.device_state(device, "INUSE")
        pbx.truth[self.call_id].answered_by = device
        bridge = pbx.new_bridge_id()
        pbx.emit("BridgeCreate", bridge_headers(bridge, 0))
        for count, channel in enumerate((agent, caller), start=1):
            channel.bridge_id = bridge
            pbx.emit("BridgeEnter", [*bridge_headers(bridge, count), *channel.headers()])
        self.bridged.set()
        outcome = await _first({"caller": self.gone.wait(), "agent": self._agent_gone.wait()}, self.talk_limit)
        if outcome is None:
            self.caller_hangup()
        first, second = (agent, caller) if outcome == "agent" else (caller, agent)
        for count, channel in ((1, first), (0, second)):
            channel.bridge_id = ""
            pbx.emit("BridgeLeave", [*bridge_headers(bridge, count), *channel.headers()])
        pbx.emit("BridgeDestroy", bridge_headers(bridge, 0))
        self.agent = None
        pbx.destroy(agent, self._agent_cause if outcome == "agent" else 16)
        pbx.device_state(device, "NOT_INUSE")
        return -1, "ANSWER"


async def _first(waits: dict, timeout: float) -> str | None:
    """Which of the named waits finishes first, or None after `timeout` seconds."""
    tasks = {asyncio.ensure_future(coro): name for name, coro in waits.items()}
    try:
        done, _ = await asyncio.wait(tasks, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
    if not done:
        return None
    for task, name in tasks.items():  # in the order given: a tie goes to the first named
        if task in done:
            return name
    return None
