"""The embedded PBX: an AMI server and a FastAGI client that behave as Asterisk 22.

Every channel runs the dialplan of config/asterisk/extensions.conf (parsed by
`dialplan.py`, run by `applications.py`): a trunk call enters from-carrier,
whose AGI() hands it to the server over FastAGI, and the server's commands
(ANSWER, EXEC StartMusicOnHold, EXEC Dial ...) produce the events a real
Asterisk sends, in the order ../shared/ami-captures/ shows. AMI actions are
served by one handler table, one module per concern: `originate.py`,
`transfers.py` (Redirect, BlindTransfer, Atxfer, CancelAtxfer), `status.py`
(list actions, Getvar/Setvar), `recording.py` (MixMonitor), `queue_actions.py`
(QueueStatus, QueueSummary, QueueAdd/Remove/Pause/Penalty, QueueLog); Hangup
and PJSIPNotify are here. Queue() is app_queue simulated (`queues.py`,
`queue_calls.py`) with the queues of config/asterisk/queues.conf.

Desk phones ring until an AMI `PJSIPNotify` (Event=talk) answers them, or
`auto_answer` seconds pass; a customer the carrier leg calls answers after
`customer_answer` seconds. A test (or the demo) can also make any ringing leg
answer with `answer()`, and any phone hang up with `phone_hangup()`.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
import uuid
from collections.abc import Callable, Collection, Coroutine, Iterable
from dataclasses import dataclass, field

from contactcentre.telephony.ami.protocol import AmiMessage
from contactcentre.telephony.simulator import dialplan as dialplan_file
from contactcentre.telephony.simulator import queues_conf
from contactcentre.telephony.simulator.ami_server import AmiServer, AmiSession
from contactcentre.telephony.simulator.applications import PbxThread
from contactcentre.telephony.simulator.bridges import SimBridge
from contactcentre.telephony.simulator.channels import CAUSE_TEXT, RING, RINGING, SimChannel
from contactcentre.telephony.simulator.originate import OriginateActions
from contactcentre.telephony.simulator.queue_actions import QueueActions
from contactcentre.telephony.simulator.queue_calls import QueueApplication
from contactcentre.telephony.simulator.queues import QueueEngine
from contactcentre.telephony.simulator.recording import RecordingActions
from contactcentre.telephony.simulator.status import StatusActions
from contactcentre.telephony.simulator.transfers import TransferActions

log = logging.getLogger(__name__)

IVR_DID = "0800200200"
EventTap = Callable[[str, list[tuple[str, str]]], None]
PJSIP_NOTIFY_NO_TARGET = ("PJSIPNotify requires either an endpoint name, a SIP URI, or a channel.  "
                          "You must use only one of them.")
CARRIER = "carrier"  # the trunk endpoint (pjsip.conf [carrier]): callers arrive on it, customers are dialled on it


@dataclass
class CallTruth:
    """What really happened to a simulated call: the ground truth tests compare with."""

    call_id: str
    number: str
    answered_by: str | None = None  # the first phone that talked to the caller, e.g. PJSIP/agent1
    talked_to: list[str] = field(default_factory=list)  # every phone that talked to the caller, in order
    abandoned: bool = False
    ended: bool = False


class SimulatedPbx:
    def __init__(self, username: str, secret: str, agi_url: str, *, talk_limit: float = 600.0,
                 patience: float = 300.0, auto_answer: float | None = None, customer_answer: float | None = 2.0,
                 endpoints: Collection[str] | None = None, dialplan: dialplan_file.Dialplan | None = None,
                 queues: queues_conf.QueuesConf | None = None):
        """`endpoints`: the PJSIP endpoints that exist (pjsip.conf); None means any name does, so any
        agent device added to the store rings. `customer_answer`: seconds before a customer the
        carrier leg calls picks up (None: never). `dialplan` and `queues`: extensions.conf and
        queues.conf parsed (default: the files in config/asterisk/)."""
        self.agi_url = agi_url
        self.talk_limit = talk_limit
        self.patience = patience
        self.auto_answer = auto_answer
        self.customer_answer = customer_answer
        self.endpoints = None if endpoints is None else {*endpoints, CARRIER}
        self.dialplan = dialplan or dialplan_file.load()
        self.channels: dict[str, SimChannel] = {}
        self.bridges: dict[str, SimBridge] = {}
        self.calls: dict[str, SimCall] = {}
        self.truth: dict[str, CallTruth] = {}
        self.taps: list[EventTap] = []  # see every event as it is sent
        self.spies: dict[str, tuple[str, str]] = {}  # ChanSpy channel -> (the channel it spies on, options)
        self.device_states: dict[str, str] = {}  # device -> its last DeviceStateChange state
        self.queues = QueueEngine(self, queues or queues_conf.load())
        self.queue_app = QueueApplication(self.queues)
        self.transfers = TransferActions(self)
        self.mixmonitor = RecordingActions(self)
        self.ami = AmiServer(username, secret, {
            "Hangup": self._action_hangup,
            "PJSIPNotify": self._action_pjsip_notify,
            **StatusActions(self).handlers(),
            **OriginateActions(self).handlers(),
            **self.transfers.handlers(),
            **self.mixmonitor.handlers(),
            **QueueActions(self.queues).handlers(),
        })
        self._epoch = int(time.time())
        self._uid = itertools.count()
        self._chan = itertools.count()
        self._local = itertools.count()  # chan_local numbers its pairs apart from chan_pjsip's channels
        self._tasks: set[asyncio.Task] = set()

    # -- lifecycle ------------------------------------------------------------

    async def start(self, host: str, port: int) -> None:
        await self.ami.start(host, port)
        log.info("PBX simulator: AMI on %s:%s, FastAGI to %s", host, self.ami.port, self.agi_url)

    async def close(self) -> None:
        for channel in list(self.channels.values()):
            self.request_hangup(channel)
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=2)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self.queues.close()
        await self.ami.close()

    def spawn(self, coro: Coroutine, name: str) -> asyncio.Task:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # -- calls and phones -----------------------------------------------------

    def place_call(self, number: str, name: str = "", did: str = IVR_DID, *, patience: float | None = None,
                   talk_limit: float | None = None, keys: Iterable[str] = ()) -> SimCall:
        """A caller dials `did` from `number`; returns the call, which runs by itself. `keys`: what the
        caller keys in at each prompt that waits for keys, in order (SimChannel.keys), e.g. the
        answers to the post-call survey, ["4", "1"], or ["9", "4", HANG_UP]."""
        caller = self.new_channel(f"PJSIP/{CARRIER}", number, name, "from-carrier", did, state=RING)
        caller.dnid = did
        caller.keys.extend(keys)
        call = SimCall(self, caller, did, patience or self.patience, talk_limit or self.talk_limit)
        self.calls[caller.uniqueid] = call
        self.truth[caller.uniqueid] = CallTruth(caller.uniqueid, number)
        self.spawn(call.run(), f"sim-call-{caller.uniqueid}")
        return call

    def answer(self, channel_name: str) -> None:
        """The far end of a ringing leg picks up (a desk phone, or the customer a carrier leg calls)."""
        channel = self.channels.get(channel_name)
        if channel is not None:
            channel.answered.set()

    def phone_hangup(self, channel_name: str, cause: int = 16) -> None:
        """The far end of a leg hangs up (the agent puts the handset down, the customer hangs up)."""
        channel = self.channels.get(channel_name)
        if channel is not None:
            self.hang_up(channel, cause)

    def phone_hold(self, channel_name: str, music_class: str = "default") -> None:
        """The phone on this leg puts the call on hold (a SIP re-INVITE `a=sendonly`): `Hold` on this
        channel with the class the phone asked for, then hold music for whoever it is bridged with
        (transfers-hold.ami call 5)."""
        channel = self.channels.get(channel_name)
        if channel is None or channel.bridge is None:
            return
        self.channel_event("Hold", channel, ("MusicClass", music_class))
        for other in channel.bridge.others(channel):
            self.start_moh(other, music_class)

    def phone_unhold(self, channel_name: str) -> None:
        """The phone takes the call off hold (`sendrecv` again): `Unhold`, then the music stops."""
        channel = self.channels.get(channel_name)
        if channel is None or channel.bridge is None:
            return
        self.channel_event("Unhold", channel)
        for other in channel.bridge.others(channel):
            self.stop_moh(other)

    def endpoint_exists(self, endpoint: str) -> bool:
        return bool(endpoint) and (self.endpoints is None or endpoint in self.endpoints)

    def start_ringing(self, channel: SimChannel) -> None:
        """The leg's far end rings; a phone picks up after auto_answer s, a customer after customer_answer s."""
        self.set_state(channel, RINGING)
        delay = self.customer_answer if channel.endpoint == CARRIER else self.auto_answer
        if delay is not None:
            asyncio.get_running_loop().call_later(delay, channel.answered.set)

    # -- channels ---------------------------------------------------------------

    def new_channel(self, device: str, number: str, name: str, context: str, exten: str, *,
                    state: int, linkedid: str | None = None, named: bool = False,
                    uniqueid: str | None = None) -> SimChannel:
        """`device` gets chan_pjsip's `-0000000N` suffix, unless `named` says it is the whole name;
        `uniqueid` is one the requester chose (Originate's ChannelId), else the PBX makes one."""
        uniqueid = uniqueid or self.new_uniqueid()
        channel = SimChannel(device if named else f"{device}-{next(self._chan):08x}", uniqueid,
                             linkedid or uniqueid, state, number, name, context, exten, created=time.time())
        self.channels[channel.name] = channel
        self.emit("Newchannel", channel.headers())
        return channel

    def find_channel(self, wanted: str) -> SimChannel | None:
        """A channel by name, by uniqueid, or by a name prefix, as Bridge() and ChanSpy() look."""
        if wanted in self.channels:
            return self.channels[wanted]
        return next((c for c in self.channels.values() if wanted and (c.uniqueid == wanted
                                                                      or c.name.startswith(wanted))), None)

    def take(self, channel: SimChannel) -> None:
        """Take a channel out of its dialplan (and any bridge) for Bridge(): its music stops, its
        dialplan ends without hanging it up, and the taker hangs it up when done with it."""
        self.stop_moh(channel)
        channel.owned = True
        channel.has_pbx = False
        channel.interrupted.set()
        if channel.bridge is not None:
            self.leave_bridge(channel)

    def new_uniqueid(self) -> str:
        return f"{self._epoch}.{next(self._uid)}"

    def next_local_number(self) -> int:
        return next(self._local)

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

    def set_variable(self, channel: SimChannel, name: str, value: str) -> None:
        channel.variables[name] = value
        self.channel_event("VarSet", channel, ("Variable", name), ("Value", value), privilege="dialplan,all")

    def device_state(self, device: str, state: str) -> None:
        self.device_states[device] = state
        self.emit("DeviceStateChange", [("Device", device), ("State", state)])
        self.queues.device_changed(device, state)  # queue members follow their state interface

    def destroy(self, channel: SimChannel, cause: int | None = None) -> None:
        """The channel is gone: `Hangup`. Whoever holds a channel calls this once it lets go."""
        if channel.destroyed:
            return
        if channel.bridge is not None:
            channel.bridge.leave(channel)
        if channel.hangup_handlers:
            PbxThread(self, channel).run_hangup_handlers()
            if channel.destroyed:
                return  # a handler hung its own channel up: that was its end
        self.mixmonitor.channel_gone(channel)
        cause = cause if cause is not None else (channel.hangup_cause if channel.hangup_cause is not None else 16)
        channel.hangup_cause = cause
        channel.destroyed = True
        channel.interrupted.set()
        channel.hung_up.set()
        for hook in channel.on_hangup:
            hook()
        self.channels.pop(channel.name, None)
        self.channel_event("Hangup", channel, ("Cause", str(cause)), ("Cause-txt", CAUSE_TEXT.get(cause, "Unknown")))
        if channel.name.startswith("PJSIP/") and not any(c.device == channel.device for c in self.channels.values()):
            self.device_state(channel.device, "NOT_INUSE")
        if channel.local is not None:
            channel.local.gone(channel)
        call = self.calls.get(channel.linkedid)
        if call is not None:
            call.channel_gone()

    def request_hangup(self, channel: SimChannel, cause: int = 16, *, event: str = "HangupRequest") -> None:
        """Something asks the channel to hang up (the far end, AMI Hangup, a dialplan Hangup()).
        A bridge it is in dissolves; whatever runs on it (its dialplan, the Dial() that made it)
        sees `interrupted` and lets it go; a leg nobody holds goes at once."""
        if channel.destroyed or channel.dead:
            return
        channel.hangup_cause = cause
        channel.soft_hangup_sent = channel.soft_hangup_sent or event == "SoftHangupRequest"
        self.channel_event(event, channel, ("Cause", str(cause)))
        self.stop_moh(channel)
        channel.interrupted.set()
        if channel.bridge is not None:
            self.leave_bridge(channel)
        if not channel.has_pbx and not channel.owned:
            self.destroy(channel, cause)

    def soft_hangup_request(self, channel: SimChannel, cause: int = 16) -> None:
        """The SoftHangupRequest Asterisk sends as a channel's dialplan (or a transfer) lets it go; the
        hangup cause stays whatever hung it up first (26 for a queue member answered elsewhere)."""
        if channel.hangup_cause is None:
            channel.hangup_cause = cause
        channel.soft_hangup_sent = True
        self.channel_event("SoftHangupRequest", channel, ("Cause", str(cause)))

    # -- bridges ----------------------------------------------------------------

    def new_bridge(self) -> SimBridge:
        bridge = SimBridge(self, str(uuid.uuid4()))
        self.bridges[bridge.id] = bridge
        self.emit("BridgeCreate", bridge.headers())
        return bridge

    def leave_bridge(self, channel: SimChannel) -> None:
        """The channel leaves (hung up or redirected): a basic bridge then dissolves."""
        bridge = channel.bridge
        if bridge is None:
            return
        bridge.leave(channel)
        for kicked in bridge.dissolve():
            self._after_kick(kicked)

    def _after_kick(self, channel: SimChannel) -> None:
        """A channel pushed out of a dissolved bridge: a pending Redirect takes it on, a leg nobody
        holds is hung up (transfers-hold call 2: the agent's leg goes once the caller is redirected)."""
        if channel.goto is not None and not channel.has_pbx:
            self.start_pbx(channel, *channel.goto)
        elif not channel.has_pbx and not channel.owned:
            self.destroy(channel, 16)

    def note_member(self, caller: SimChannel, member: str) -> None:
        """A queue member answered the caller: the truth names it as app_queue does (the member's
        interface, so Local/2001@agents/n rather than the phone its Local channel dialled)."""
        truth = self.truth.get(caller.uniqueid)
        if truth is None:
            return
        if member not in truth.talked_to:
            truth.talked_to.append(member)
        truth.answered_by = truth.answered_by or member
        call = self.calls.get(caller.uniqueid)
        if call is not None:
            call.bridged.set()

    def phone_behind(self, channel: SimChannel) -> SimChannel | None:
        """The desk phone a leg reaches: the leg itself, or the phone ;2 of its Local pair is bridged to."""
        if channel.is_phone:
            return channel
        pair = channel.local
        if pair is None or channel is not pair.one or pair.two.bridge is None:
            return None
        return next((c for c in pair.two.bridge.others(pair.two) if c.is_phone), None)

    def note_bridge(self, bridge: SimBridge) -> None:
        """Keep the truth: which phones an inbound caller has talked to."""
        for channel in bridge.channels:
            truth = self.truth.get(channel.uniqueid)
            if truth is None:
                continue
            for other in bridge.others(channel):
                if other.is_phone and other.device not in truth.talked_to:
                    truth.talked_to.append(other.device)
                    truth.answered_by = truth.answered_by or other.device
                    call = self.calls.get(channel.uniqueid)
                    if call is not None:
                        call.bridged.set()

    # -- dialplan ---------------------------------------------------------------

    def start_pbx(self, channel: SimChannel, context: str, exten: str, priority: int = 1) -> asyncio.Task:
        """Run the dialplan on a channel that had none (an answered Originate, a redirected leg)."""
        channel.has_pbx = True
        channel.owned = False
        channel.goto = None  # this is where the Redirect sent it
        return self.spawn(PbxThread(self, channel).run(context, exten, priority), f"sim-pbx-{channel.name}")

    def set_goto(self, channel: SimChannel, context: str, exten: str, priority: int) -> None:
        """Asterisk's async goto, first half: the channel's place in the dialplan changes at once
        (`Newexten` still names the application it was running: transfers-hold calls 1 and 2)."""
        channel.goto = (context, exten, priority)
        if not channel.has_pbx:
            return
        channel.context, channel.exten, channel.priority = context, exten, priority
        channel.published_cep = (context, exten, priority)
        self.channel_event("Newexten", channel, ("Extension", exten), ("Application", channel.application),
                           ("AppData", channel.application_data), privilege="dialplan,all")
        channel.interrupted.set()

    def apply_goto(self, channel: SimChannel) -> None:
        """Second half: it leaves its bridge and carries on at the new place."""
        if channel.bridge is not None:
            self.leave_bridge(channel)
        if not channel.has_pbx and channel.goto is not None:
            self.start_pbx(channel, *channel.goto)

    # -- music on hold --------------------------------------------------------------

    def start_moh(self, channel: SimChannel, music_class: str = "default") -> None:
        if channel.moh_class is None:
            channel.moh_class = music_class or "default"
            self.channel_event("MusicOnHoldStart", channel, ("Class", channel.moh_class))

    def stop_moh(self, channel: SimChannel) -> None:
        if channel.moh_class is not None:
            channel.moh_class = None
            self.channel_event("MusicOnHoldStop", channel)

    # -- AMI actions --------------------------------------------------------------

    async def _action_hangup(self, session: AmiSession, action: AmiMessage) -> None:
        name = action.get("Channel", "")
        if not name:
            session.respond(action, "Error", [("Message", "No channel specified")])
            return
        channel = self.channels.get(name)
        if channel is None:
            session.respond(action, "Error", [("Message", "No such channel")])
            return
        session.respond(action, "Success", [("Message", "Channel Hungup")])
        cause = action.get("Cause") or ""
        # Asterisk keeps going with no cause when Cause is not 0..127, rather than not hanging up.
        self.hang_up(channel, int(cause) if cause.isdigit() and 0 < int(cause) <= 127 else 16)

    def hang_up(self, channel: SimChannel, cause: int = 16) -> None:
        """AMI Hangup, or the phone hanging up: the transfer machinery may have a say first."""
        if not self.transfers.hangup(channel, cause):
            self.request_hangup(channel, cause)

    async def _action_pjsip_notify(self, session: AmiSession, action: AmiMessage) -> None:
        endpoint = action.get("Endpoint", "")
        if not endpoint:
            session.respond(action, "Error", [("Message", PJSIP_NOTIFY_NO_TARGET)])
            return
        session.respond(action, "Success", [("Message", "NOTIFY sent")])
        if "Event=talk" not in action.get_all("Variable"):
            return
        for channel in list(self.channels.values()):
            if channel.device == f"PJSIP/{endpoint}" and channel.state == RINGING:
                channel.answered.set()


class SimCall:
    """One caller: its trunk channel and its dialplan, with the handles tests and the demo use."""

    def __init__(self, pbx: SimulatedPbx, caller: SimChannel, did: str, patience: float, talk_limit: float):
        self.pbx = pbx
        self.caller = caller
        self.did = did
        self.patience = patience
        self.talk_limit = talk_limit
        self.bridged = asyncio.Event()  # the caller has talked to a phone
        self.gone = asyncio.Event()  # the caller hung up (or was hung up)
        self.finished = asyncio.Event()  # every channel of the call is gone
        self.t_first_event = time.perf_counter()
        self.t_ringing: float | None = None

    @property
    def call_id(self) -> str:
        return self.caller.linkedid

    @property
    def moh(self) -> bool:
        return self.caller.moh_class is not None

    @property
    def agent(self) -> SimChannel | None:
        """The phone leg the caller talks to now, or the one ringing for it."""
        if self.caller.bridge is not None:
            phones = [p for c in self.caller.bridge.others(self.caller) if (p := self.pbx.phone_behind(c))]
            if phones:
                return phones[0]
        ringing = [c for c in self.pbx.channels.values()
                   if c.linkedid == self.call_id and c.is_phone and c.state == RINGING]
        return ringing[0] if ringing else None

    # -- what the outside world does to the call --------------------------------

    def caller_hangup(self, cause: int = 16) -> None:
        if self.gone.is_set():
            return
        self.gone.set()
        self.pbx.request_hangup(self.caller, cause)

    def agent_answer(self) -> None:
        agent = self.agent
        if agent is not None:
            agent.answered.set()

    def agent_hangup(self, cause: int = 16) -> None:
        agent = self.agent
        if agent is not None:
            self.pbx.hang_up(agent, cause)

    # -- dialplan ---------------------------------------------------------------

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        patience = loop.call_later(self.patience, self._lose_patience)
        talk = loop.create_task(self._limit_talk())
        try:
            await PbxThread(self.pbx, self.caller).run("from-carrier", self.did, 1)
            await self.finished.wait()  # a caller taken by Bridge() lives on after its dialplan
        except Exception:
            log.exception("simulated call failed", extra={"call_id": self.call_id})
        finally:
            patience.cancel()
            talk.cancel()
            self.gone.set()
            self.pbx.destroy(self.caller)

    def channel_gone(self) -> None:
        """Called as each channel of the call is hung up: the call ends with its last channel."""
        if self.caller.destroyed and not any(c.linkedid == self.call_id for c in self.pbx.channels.values()):
            self.pbx.calls.pop(self.call_id, None)
            truth = self.pbx.truth[self.call_id]
            truth.ended = True
            truth.abandoned = truth.answered_by is None
            self.gone.set()
            self.finished.set()

    def _lose_patience(self) -> None:
        if not self.bridged.is_set():
            self.caller_hangup()

    async def _limit_talk(self) -> None:
        await self.bridged.wait()
        await asyncio.sleep(self.talk_limit)
        self.caller_hangup()
