"""Queue(): a caller waits in an app_queue queue until a member answers, the caller hangs up, or time runs out.

The order of events is the one ../shared/ami-captures shows (README, "Quirks"):

* joining: DeviceStateChange Queue:<queue> RINGING, QueueCallerJoin, MusicOnHoldStart;
* ringing a PJSIP member (queue-basic.ami): Newchannel, AgentCalled, DialBegin,
  NewConnectedLine on the caller, Newstate Ringing, Newexten AppQueue,
  NewConnectedLine on the phone, its device RINGING (QueueMemberStatus),
  DialState;
* ringing a Local member such as `Local/2001@agents/n` (queue-localmembers.ami):
  a Local pair per member, LocalBridge, AgentCalled and DialBegin naming ;1,
  while ;2 runs the dialplan at 2001@agents and Dial()s the phone; with
  ringall every free member gets its own pair, the first ;1 answered wins and
  the others are cancelled (two DialEnd CANCEL each: app_queue's own and the
  one its hangup of a channel still being dialled sends) and hung up with
  cause 26, answered elsewhere;
* answered: DialEnd ANSWER, MusicOnHoldStop, QueueCallerLeave *before*
  AgentConnect, then the bridge;
* the end: AgentComplete, Reason agent (the member hung up: after its
  BridgeLeave, before the caller's), caller, or transfer (right after
  BlindTransfer / AttendedTransfer). A caller Redirected away from the member
  gets its AgentComplete (Reason caller, no Dest) only when it finally hangs
  up (transfers-hold.ami call 2);
* abandoned: HangupRequest, MusicOnHoldStop, DialEnd CANCEL twice if a phone
  was ringing, QueueCallerAbandon, QueueCallerLeave, then the end of the
  dialplan's SoftHangupRequest and Hangup.

Of Queue()'s options the simulator honours t and T: they let the member (t)
or the caller (T) use the features.conf transfer codes in the bridge, which
AMI Atxfer feeds; without them an Atxfer of the agent does nothing.

A member that does not answer within the queue's `timeout` gets
AgentRingNoAnswer, and the next round starts `retry` seconds later. The
Queue() timeout argument is checked between rounds, as app_queue does.
Waiting callers wake on a change (a member freed, unpaused or added, a
wrap-up over) instead of app_queue's one-second polling: the events are the
same, only sooner.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from contactcentre.telephony.simulator.applications import PbxThread, first, talk
from contactcentre.telephony.simulator.channels import DOWN, UP, SimChannel, until_interrupted
from contactcentre.telephony.simulator.local import CALLING_PRES, LocalPair
from contactcentre.telephony.simulator.queues import CallQueue, Entry, Member, QueueEngine

if TYPE_CHECKING:
    from contactcentre.telephony.simulator.bridges import SimBridge
    from contactcentre.telephony.simulator.pbx import SimulatedPbx

log = logging.getLogger(__name__)

AGENT = "agent,all"  # the privilege of app_queue's events
CANCELLED = 0  # the cause of a member's leg the queue gives up on (Hangup "Unknown" in queue-basic.ami)
ANSWERED_ELSEWHERE = 26
RECHECK = 1.0  # seconds: how often app_queue looks again for a caller whose turn has not come
# Queue() clears these first, so a caller that went through a queue before starts afresh (queue-basic.ami).
UNSET_AT_START = ("ANSWEREDTIME", "ANSWEREDTIME_MS", "DIALEDTIME", "DIALEDTIME_MS", "QUEUEWAIT", "QUEUEWAIT_MS")


class QueueApplication:
    """Queue() for every channel that runs it, and the calls it has connected (transfers end them)."""

    def __init__(self, engine: QueueEngine):
        self.engine = engine
        self.connections: dict[str, Connection] = {}  # bridge id -> the queue call talking in it

    async def run(self, thread: PbxThread, data: str) -> int:
        name, options, _url, _announce, timeout = (data.split(",") + [""] * 5)[:5]
        queue = self.engine.find(name)
        if queue is None:
            log.warning("Queue(): no queue %r in queues.conf", name, extra={"channel": thread.channel.name})
            self.engine.pbx.set_variable(thread.channel, "QUEUESTATUS", "UNKNOWN")
            return 0
        seconds = float(timeout) if timeout.strip().replace(".", "", 1).isdigit() else 0.0
        return await QueueCall(self, thread.channel, queue, options, seconds).run()

    def transferred(self, bridge: SimBridge, event: str, *data: str) -> None:
        """A BlindTransfer or AttendedTransfer in a bridge a queue call made: its AgentComplete."""
        connection = self.connections.get(bridge.id)
        if connection is not None:
            connection.complete("transfer", (event, *data))


def _newexten(pbx: SimulatedPbx, channel: SimChannel) -> None:
    """app_queue's outgoing legs sit at `AppQueue (Outgoing Line)`, at the caller's extension."""
    channel.application, channel.application_data = "AppQueue", "(Outgoing Line)"
    pbx.channel_event("Newexten", channel, ("Extension", channel.exten), ("Application", channel.application),
                      ("AppData", channel.application_data), privilege="dialplan,all")


class QueueCall:
    """One caller in Queue(), from QueueCallerJoin until the queue lets it go."""

    def __init__(self, app: QueueApplication, caller: SimChannel, queue: CallQueue, options: str, timeout: float):
        self.app = app
        self.engine = app.engine
        self.pbx = app.engine.pbx
        self.caller = caller
        self.queue = queue
        self.started = time.time()
        self.expire = self.started + timeout if timeout > 0 else None
        self.entry: Entry | None = None
        self.options = options  # of those app_queue has, the simulator honours t and T (transfers)

    async def run(self) -> int:
        refusal = self._refusal()
        if refusal is not None:
            self.pbx.set_variable(self.caller, "QUEUESTATUS", refusal)
            return 0
        self.set_variables(self.caller, [(name, "") for name in UNSET_AT_START])
        self.entry = self._join()
        while True:
            if self.caller.interrupted.is_set():
                return self._abandon()
            if self.expire is not None and time.time() >= self.expire:
                return self._time_out()
            changed = self.engine.changed  # taken before looking, so no change is missed
            attempts = self._ring_round() if self._our_turn() else []
            if not attempts:
                # Nothing to ring: wait for a change, and look again after a second in any case (app_queue's
                # RECHECK), which also covers a member that could not be dialled.
                await first({"change": changed.wait(), "caller": self.caller.interrupted.wait()},
                            self._until_expiry(RECHECK))
                continue
            winner, losers = await self._await_answer(attempts)
            if winner is not None:
                return await self._connect(winner, losers)
            if not self.caller.interrupted.is_set():
                await until_interrupted(self.caller, self._until_expiry(self.queue.conf.retry))

    # -- joining and leaving ------------------------------------------------------

    def _refusal(self) -> str | None:
        queue = self.queue
        if queue.conf.maxlen and len(queue.entries) >= queue.conf.maxlen:
            return "FULL"
        if not queue.conf.joinempty and not any(not m.paused for m in queue.logged_in()):
            return "JOINEMPTY"
        return None

    def _join(self) -> Entry:
        queue, caller = self.queue, self.caller
        entry = Entry(caller, time.time(), len(queue.entries) + 1)
        queue.entries.append(entry)
        self.engine.queue_device(f"Queue:{queue.name}", "RINGING")
        count = str(len(queue.entries))
        self.pbx.channel_event("QueueCallerJoin", caller, ("Queue", queue.name), ("Position", count),
                               ("Count", count), privilege=AGENT)
        self.engine.log(queue.name, caller.uniqueid, "NONE", "ENTERQUEUE", "", caller.caller_num,
                        str(entry.original_position))
        self.pbx.start_moh(caller, queue.conf.musicclass)
        return entry

    def _leave(self) -> int:
        queue, entry = self.queue, self.entry
        position = queue.position(entry)
        queue.entries.remove(entry)
        if not queue.entries:
            self.engine.queue_device(f"Queue:{queue.name}", "NOT_INUSE")
        self.pbx.channel_event("QueueCallerLeave", self.caller, ("Queue", queue.name), ("Position", str(position)),
                               ("Count", str(len(queue.entries))), privilege=AGENT)
        self.pbx.set_variable(self.caller, "QUEUEPOSITION", str(position))
        self.engine.notify()  # the callers behind move up
        return position

    def _abandon(self) -> int:
        """The caller hung up (or was Redirected away) before any member answered."""
        queue, entry, caller = self.queue, self.entry, self.caller
        self.pbx.stop_moh(caller)
        now = time.time()
        wait, position = entry.wait(now), queue.position(entry)
        self.set_variables(caller, [*self._waited(now), *self.timing_variables(now, None), ("ABANDONED", "TRUE")])
        self.set_queue_variables(caller)
        self.pbx.channel_event("QueueCallerAbandon", caller, ("Queue", queue.name), ("Position", str(position)),
                               ("OriginalPosition", str(entry.original_position)), ("HoldTime", str(wait)),
                               privilege=AGENT)
        queue.record_abandon(wait)
        self.set_queue_variables(caller)
        self._leave()
        self.engine.log(queue.name, caller.uniqueid, "NONE", "ABANDON", str(position),
                        str(entry.original_position), str(wait))
        return -1

    def _time_out(self) -> int:
        """The Queue() timeout argument ran out: the caller leaves and the dialplan goes on."""
        queue, entry = self.queue, self.entry
        self.pbx.stop_moh(self.caller)
        wait = entry.wait(time.time())
        position = self._leave()
        self.engine.log(queue.name, self.caller.uniqueid, "NONE", "EXITWITHTIMEOUT", str(position),
                        str(entry.original_position), str(wait))
        self.pbx.set_variable(self.caller, "QUEUESTATUS", "TIMEOUT")
        return 0

    def _until_expiry(self, at_most: float) -> float:
        if self.expire is None:
            return at_most
        return max(0.0, min(at_most, self.expire - time.time()))

    # -- ringing members -------------------------------------------------------------

    def _our_turn(self) -> bool:
        """is_our_turn(): with autofill, a caller may ring while fewer callers ahead of it (not already
        ringing someone) wait than there are members free; without it, only the head of the queue."""
        queue, entry = self.queue, self.entry
        if not self.engine.conf.autofill:
            return queue.entries[0] is entry
        now = time.time()
        free = sum(queue.available(m, now) for m in queue.members)
        ahead = 0
        for other in queue.entries:
            if other is entry:
                return ahead < free
            ahead += not other.ringing
        return False

    def _ring_round(self) -> list[Attempt]:
        members = self.queue.choose(time.time())
        attempts = [a for a in (Attempt.dial(self, m, alone=len(members) == 1) for m in members) if a is not None]
        self.entry.ringing = bool(attempts)
        return attempts

    def agent_called(self, attempt: Attempt) -> None:
        self.pbx.emit("AgentCalled", [*self.caller.headers(), *attempt.channel.headers("Dest"),
                                      *self.member_headers(attempt.member)], privilege=AGENT)

    def member_headers(self, member: Member) -> list[tuple[str, str]]:
        return [("Queue", self.queue.name), ("Interface", member.interface), ("MemberName", member.name)]

    def dial_event(self, name: str, attempt: Attempt, status: str) -> None:
        self.pbx.emit(name, [*self.caller.headers(), *attempt.channel.headers("Dest"), ("DialStatus", status)])

    async def _await_answer(self, attempts: list[Attempt]) -> tuple[Attempt | None, list[Attempt]]:
        """Ring for the queue's `timeout`: (the attempt answered, the others still ringing), or (None, [])."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.queue.conf.timeout
        live = list(attempts)
        while live:
            waits = {"caller": self.caller.interrupted.wait()}  # first: a caller who hangs up as a phone answers
            for index, attempt in enumerate(live):
                waits[f"answer {index}"] = attempt.channel.answered.wait()
                waits[f"gone {index}"] = attempt.channel.interrupted.wait()
            outcome = await first(waits, max(deadline - loop.time(), 0.0))
            if outcome is None:
                self._no_answer(live)
                break
            if outcome == "caller":
                self._cancel(live)
                break
            kind, index = outcome.split()
            attempt = live.pop(int(index))
            if kind == "answer":
                return attempt, live
            self._failed(attempt)
        self.entry.ringing = False
        return None, []

    def _no_answer(self, attempts: list[Attempt]) -> None:
        for attempt in attempts:
            self._ring_no_answer(attempt)
            self.dial_event("DialEnd", attempt, "NOANSWER")
            attempt.release(CANCELLED)

    def _failed(self, attempt: Attempt) -> None:
        """The member's leg went away while ringing (busy, declined, its Local dialplan ended)."""
        self._ring_no_answer(attempt)
        self.dial_event("DialEnd", attempt, "BUSY")
        attempt.release(attempt.channel.hangup_cause or 17)

    def _ring_no_answer(self, attempt: Attempt) -> None:
        ring_ms = int((time.time() - attempt.started) * 1000)
        self.pbx.emit("AgentRingNoAnswer", [*self.caller.headers(), *attempt.channel.headers("Dest"),
                                            *self.member_headers(attempt.member),
                                            ("RingTime", str(ring_ms // 1000))], privilege=AGENT)
        self.engine.log(self.queue.name, self.caller.uniqueid, attempt.member.name, "RINGNOANSWER", str(ring_ms))

    def _cancel(self, attempts: list[Attempt]) -> None:
        """The caller hung up while members rang (queue_log RINGCANCELED, then ABANDON)."""
        for attempt in attempts:
            for _ in range(2):  # app_queue's DialEnd, then the one hanging up a leg still being dialled sends
                self.dial_event("DialEnd", attempt, "CANCEL")
            ring_ms = int((time.time() - attempt.started) * 1000)
            self.engine.log(self.queue.name, self.caller.uniqueid, attempt.member.name, "RINGCANCELED", str(ring_ms))
            attempt.release(CANCELLED)

    # -- connected -----------------------------------------------------------------------

    async def _connect(self, winner: Attempt, losers: list[Attempt]) -> int:
        self._answered(winner, losers)
        holdtime = self._hand_over(winner)
        return await self._talk(winner, holdtime)

    def _answered(self, winner: Attempt, losers: list[Attempt]) -> None:
        """DialEnd ANSWER; with ringall, the others are cancelled and hung up (answered elsewhere)."""
        pbx, caller, leg = self.pbx, self.caller, winner.channel
        if winner.pair is None:
            pbx.set_state(leg, UP)  # the phone picked up (a Local ;1 is up as soon as its ;2 is)
        self.dial_event("DialEnd", winner, "ANSWER")
        for loser in losers:
            self.dial_event("DialEnd", loser, "CANCEL")
        connected = (leg.caller_num or "<unknown>", leg.caller_name or "<unknown>")
        if (caller.connected_num, caller.connected_name) != connected:
            caller.connected_num, caller.connected_name = connected
            pbx.channel_event("NewConnectedLine", caller)
        for loser in losers:
            self.dial_event("DialEnd", loser, "CANCEL")
            loser.release(ANSWERED_ELSEWHERE)
        self.entry.ringing = False
        pbx.stop_moh(caller)

    def _hand_over(self, winner: Attempt) -> int:
        """The caller leaves the queue for the member: variables, QueueCallerLeave, then AgentConnect."""
        pbx, caller, queue, member, leg = self.pbx, self.caller, self.queue, winner.member, winner.channel
        now = time.time()
        holdtime, ringtime = self.entry.wait(now), int(now - winner.started)
        if queue.conf.setinterfacevar:
            self._set_both(leg, [("MEMBERINTERFACE", member.interface), ("MEMBERNAME", member.name),
                                 ("MEMBERCALLS", str(member.calls)), ("MEMBERLASTCALL", str(int(member.last_call))),
                                 ("MEMBERPENALTY", str(member.penalty)), ("MEMBERDYNAMIC", str(int(member.dynamic))),
                                 ("MEMBERREALTIME", "0")])
        if winner.pair is None:
            pbx.device_state(leg.device, "INUSE")  # a Local member's phone is in use already (;2's Dial)
        if queue.conf.setqueueentryvar:
            self._set_both(leg, [("QEHOLDTIME", str(holdtime)), ("QEORIGINALPOS", str(self.entry.original_position))])
        queue.record_hold(holdtime)
        if queue.conf.setqueuevar:
            self._set_both(leg, queue.variables())
        self._leave()
        self.set_variables(caller, self._waited(now))
        pbx.emit("AgentConnect", [*caller.headers(), *leg.headers("Dest"), *self.member_headers(member),
                                  ("HoldTime", str(holdtime)), ("RingTime", str(ringtime))], privilege=AGENT)
        self.engine.log(queue.name, caller.uniqueid, member.name, "CONNECT", str(holdtime), leg.uniqueid,
                        str(ringtime))
        member.in_call = True
        member.reserved = False
        return holdtime

    async def _talk(self, winner: Attempt, holdtime: int) -> int:
        """The caller and the member in one bridge, until the caller is out of it."""
        pbx, caller, leg = self.pbx, self.caller, winner.channel
        leg.may_transfer, caller.may_transfer = "t" in self.options, "T" in self.options
        connection = Connection(self, winner.member, leg, holdtime)
        bridge = pbx.new_bridge()
        bridge.on_leave = connection.left
        self.app.connections[bridge.id] = connection
        pbx.note_member(caller, winner.member.interface)
        try:
            bridge.enter(leg)
            bridge.enter(caller)
            await talk(pbx, caller, leg, bridge)
            connection.caller_out()
        finally:
            self.app.connections.pop(bridge.id, None)
        return -1

    # -- channel variables ---------------------------------------------------------------

    def set_variables(self, channel: SimChannel, pairs: list[tuple[str, str]]) -> None:
        for name, value in pairs:
            self.pbx.set_variable(channel, name, value)

    def _set_both(self, leg: SimChannel, pairs: list[tuple[str, str]]) -> None:
        self.set_variables(self.caller, pairs)
        self.set_variables(leg, pairs)

    def set_queue_variables(self, channel: SimChannel) -> None:
        if self.queue.conf.setqueuevar:
            self.set_variables(channel, self.queue.variables())

    def _waited(self, now: float) -> list[tuple[str, str]]:
        return [("QUEUEWAIT", str(self.entry.wait(now))), ("QUEUEWAIT_MS", str(int((now - self.entry.start) * 1000)))]

    def timing_variables(self, now: float, answered: float | None) -> list[tuple[str, str]]:
        talked = now - answered if answered is not None else 0.0
        return [("DIALEDTIME", str(int(now - self.started))), ("DIALEDTIME_MS", str(int((now - self.started) * 1000))),
                ("ANSWEREDTIME", str(int(talked))), ("ANSWEREDTIME_MS", str(int(talked * 1000)))]


class Attempt:
    """One member rung for a caller: the phone's channel, or ;1 of the member's Local pair."""

    def __init__(self, call: QueueCall, member: Member, channel: SimChannel, pair: LocalPair | None = None):
        self.call = call
        self.member = member
        self.channel = channel
        self.pair = pair
        self.started = time.time()
        member.reserved = True
        if pair is not None:
            pair.dialler = self

    @classmethod
    def dial(cls, call: QueueCall, member: Member, *, alone: bool) -> Attempt | None:
        tech, _, resource = member.interface.partition("/")
        dialler = DIALLERS.get(tech.upper())
        if dialler is None:
            log.warning("queue member %s: the simulator dials only PJSIP/ and Local/", member.interface)
            return None
        return dialler(call, member, resource, alone)

    def release(self, cause: int) -> None:
        """The queue gives up on this leg: hang it up (a Local ;1 takes its ;2 with it)."""
        self.member.reserved = False
        self.call.pbx.destroy(self.channel, cause)
        self.call.engine.notify()

    # LocalDialler: what ;2's Dial() does shows on ;1, as app_queue sees it

    def ringing(self, pair: LocalPair) -> None:
        pbx, caller, one = self.call.pbx, self.call.caller, pair.one
        one.exten = caller.exten
        _newexten(pbx, one)
        pbx.channel_event("NewCallerid", one, CALLING_PRES)
        one.connected_num, one.connected_name = caller.caller_num or "<unknown>", caller.caller_name or "<unknown>"
        pbx.channel_event("NewConnectedLine", one)
        self.call.dial_event("DialState", self, "RINGING")

    def dial_end(self, pair: LocalPair) -> None:
        """Nothing: app_queue sends its own DialEnd once it sees ;1 answered."""


def _dial_pjsip(call: QueueCall, member: Member, endpoint: str, alone: bool) -> Attempt | None:
    pbx, caller = call.pbx, call.caller
    if not pbx.endpoint_exists(endpoint):
        return None
    phone = pbx.new_channel(f"PJSIP/{endpoint}", endpoint, endpoint, "from-agents", "s", state=DOWN,
                            linkedid=caller.linkedid)
    phone.owned = True
    before = phone.headers("Dest")  # DialBegin carries the snapshot from before app_queue set the leg up
    pbx.set_variable(phone, "DIALEDPEERNUMBER", endpoint)
    phone.exten = caller.exten
    phone.connected_num, phone.connected_name = caller.caller_num or "<unknown>", caller.caller_name or "<unknown>"
    attempt = Attempt(call, member, phone)
    call.agent_called(attempt)
    pbx.emit("DialBegin", [*caller.headers(), *before, ("DialString", member.interface)])
    if alone:  # with several phones ringing, the caller learns who it talks to only when one answers
        caller.connected_num, caller.connected_name = phone.caller_num, phone.caller_name
        pbx.channel_event("NewConnectedLine", caller)
    pbx.start_ringing(phone)
    _newexten(pbx, phone)
    pbx.channel_event("NewConnectedLine", phone)
    pbx.device_state(phone.device, "RINGING")
    call.dial_event("DialState", attempt, "RINGING")
    return attempt


def _dial_local(call: QueueCall, member: Member, resource: str, alone: bool) -> Attempt | None:
    """`Local/2001@agents/n`: ;2 runs 2001@agents (which Dial()s the phone); /n keeps the pair in the call."""
    pbx, caller = call.pbx, call.caller
    target, _, options = resource.partition("/")
    exten, _, context = target.partition("@")
    context = context or "default"
    if pbx.dialplan.find(context, exten) is None:
        return None
    pair = LocalPair(pbx, exten, context, linkedid=caller.linkedid)
    one, two = pair.one, pair.two
    attempt = Attempt(call, member, one, pair)
    _newexten(pbx, one)
    pair.set_caller_id(one, caller.exten, "")  # ;1 calls out as the number the caller dialled
    pbx.set_variable(one, "DIALEDPEERNUMBER", resource)
    pbx.set_variable(two, "DIALEDPEERNUMBER", resource)
    pair.set_caller_id(two, caller.caller_num, caller.caller_name)
    two.connected_num, two.connected_name = caller.exten or "<unknown>", "<unknown>"
    pbx.channel_event("NewConnectedLine", two)
    pbx.emit("LocalBridge", [*pair.headers(), ("Context", context), ("Exten", exten),
                             ("LocalOptimization", "No" if "n" in options else "Yes")])
    call.agent_called(attempt)
    pbx.emit("DialBegin", [*caller.headers(), *one.headers("Dest"), ("DialString", member.interface)])
    pbx.start_pbx(two, context, exten, 1)
    return attempt


DIALLERS: dict[str, Callable[[QueueCall, Member, str, bool], Attempt | None]] = {
    "PJSIP": _dial_pjsip,
    "LOCAL": _dial_local,
}


class Connection:
    """A caller talking to a queue member, until its AgentComplete."""

    def __init__(self, call: QueueCall, member: Member, leg: SimChannel, holdtime: int):
        self.call = call
        self.member = member
        self.leg = leg
        self.holdtime = holdtime
        self.started = time.time()
        self.done = False

    def left(self, channel: SimChannel) -> None:
        """A channel left the bridge: one that is hanging up ends the queue call."""
        if self.done or not channel.dead:
            return  # a transferer moving to its consultation bridge, a Redirect: not the end yet
        self.complete("agent" if channel is self.leg else "caller")

    def caller_out(self) -> None:
        """The caller is out of the bridge; unless something ended the queue call already, this does."""
        if self.done:
            return
        caller = self.call.caller
        if caller.goto is not None and not caller.dead:
            # Redirected elsewhere: app_queue counts the call as the caller's until the caller hangs up.
            caller.on_hangup.append(lambda: self.complete("caller", with_dest=False))
            return
        self.complete("caller" if caller.dead else "agent")

    def complete(self, reason: str, transfer: tuple[str, ...] = (), *, with_dest: bool = True) -> None:
        if self.done:
            return
        self.done = True
        call, member = self.call, self.member
        queue, caller = call.queue, call.caller
        now = time.time()
        talktime = int(now - self.started)
        call.pbx.emit("AgentComplete", [*caller.headers(), *(self.leg.headers("Dest") if with_dest else []),
                                        *call.member_headers(member), ("HoldTime", str(self.holdtime)),
                                        ("TalkTime", str(talktime)), ("Reason", reason)], privilege=AGENT)
        queue.record_talk(talktime, self.holdtime)
        event, *data = transfer or ({"agent": "COMPLETEAGENT", "caller": "COMPLETECALLER"}[reason],)
        call.engine.log(queue.name, caller.uniqueid, member.name, event, *data, str(self.holdtime), str(talktime),
                        str(call.entry.original_position))
        call.engine.call_finished(queue, member)
        call.set_queue_variables(caller)
        call.set_variables(caller, call.timing_variables(now, self.started))
