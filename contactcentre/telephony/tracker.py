"""Turns AMI events into Calls keyed by Linkedid, and knows who talked to whom.

Every channel Asterisk creates for one inbound call (the trunk leg, the agent
legs it dials, the Local pairs of transfers and queue members) shares the
Linkedid of the first channel; that is our call id. A call is *handled* by an
agent leg when that leg and the caller's channel are joined, through bridges
and Local channel pairs, at some moment: so a consultation the caller never
heard does not count, and a Local/2001@agents/n queue member collapses into
one leg with the phone it dials.

A call the server *placed* (an Originate to an agent's phone, whose dialplan
then dials the customer) starts with a channel created Down rather than one
ringing us: its first channel is the agent's leg and the party is the channel
that leg dials (its first DialBegin). The same agent-leg events come for it,
plus OutboundDialEnded once the party answered or could not be reached.

The tracker publishes domain events on the bus and never blocks: each AMI
event is a few dict operations.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from contactcentre.bus import Bus
from contactcentre.telephony.ami import events as ev
from contactcentre.telephony.ami.protocol import AmiMessage
from contactcentre.telephony.events import (
    AgentLegAnswered,
    AgentLegEnded,
    AgentLegRinging,
    CallArrived,
    CallEnded,
    OutboundDialEnded,
)

log = logging.getLogger(__name__)

STATE_DOWN = 0
STATE_RING = 4
STATE_RINGING = 5
STATE_UP = 6
LINK_DOWN_REASON = "ended while the PBX link was down"
# What the tracker asks the PBX after every login, in this order: each list action, and the item and
# Complete events of its answer (which a replayed stream holds as events).
RESYNC_LISTS = (("CoreShowChannels", "CoreShowChannel", "CoreShowChannelsComplete"),
                ("BridgeList", "BridgeListItem", "BridgeListComplete"))
TIMELINE_EVENTS = {"Newchannel", "Newstate", "DialBegin", "DialEnd", "BridgeEnter", "BridgeLeave", "Hold", "Unhold",
                   "BlindTransfer", "AttendedTransfer", "HangupRequest", "Hangup"}


def device_of(channel: str) -> str:
    """`PJSIP/agent1-0000002a` -> `PJSIP/agent1`; `Local/2003@xfer-00000000;1` -> `Local/2003@xfer`."""
    base = channel.split(";", 1)[0]
    head, sep, tail = base.rpartition("-")
    return head if sep and tail and not tail.strip("0123456789abcdef") else base


def is_local(channel: str) -> bool:
    return channel.startswith("Local/")


@dataclass(slots=True)
class Channel:
    uniqueid: str
    name: str
    call_id: str
    state: int
    # Kept because every bridge change and hangup asks: device_of(name), and whether it is a Local channel.
    device: str
    local: bool

    def rename(self, name: str) -> None:
        self.name = name
        self.device = device_of(name)
        self.local = is_local(name)


@dataclass(slots=True)
class Leg:
    """One agent's part in a call: from first talking to the caller to last.

    talk: seconds joined to the caller. hold: seconds the caller spent hearing
    hold music while this leg was still on the call (the phone's hold, a
    consultation during an attended transfer, a hold through the hold context).
    """

    identity: str  # the agent's device or queue member, e.g. PJSIP/agent1
    joined_at: float
    left_at: float | None = None
    talk_seconds: float = 0.0
    hold_seconds: float = 0.0
    connected_since: float | None = None
    hold_since: float | None = None

    def connect(self, now: float) -> None:
        if self.connected_since is None:
            self.connected_since = now

    def disconnect(self, now: float) -> None:
        if self.connected_since is not None:
            self.talk_seconds += now - self.connected_since
            self.connected_since = None
            self.left_at = now

    def hold(self, now: float) -> None:
        if self.hold_since is None:
            self.hold_since = now

    def unhold(self, now: float) -> None:
        if self.hold_since is not None:
            self.hold_seconds += now - self.hold_since
            self.hold_since = None

    def end(self, now: float) -> None:
        self.disconnect(now)
        self.unhold(now)

    def summary(self) -> tuple[str, float, float | None, float, float]:
        return (self.identity, self.joined_at, self.left_at, round(self.talk_seconds, 3), round(self.hold_seconds, 3))


@dataclass(slots=True)
class Call:
    call_id: str
    started_at: float
    caller_number: str
    caller_name: str
    inbound: bool
    placed: bool = False  # originated: its first channel is the agent's leg, created Down
    party: str = ""  # uniqueid of the customer's channel: the caller's, or the one a placed call dialled
    channels: dict[str, Channel] = field(default_factory=dict)
    timeline: list[tuple[float, str, str]] = field(default_factory=list)  # (time, event, channel)
    legs: dict[str, Leg] = field(default_factory=dict)  # agent legs that talked to the caller, in order
    caller_hung_up: bool = False
    ended_at: float | None = None
    end_reason: str = ""

    @property
    def handled_by(self) -> list[str]:
        return list(self.legs)

    def is_agent_leg(self, channel: Channel) -> bool:
        """The channel is an agent's phone on this call: a leg an inbound call dialled, or a placed call's own."""
        if channel.local:
            return False
        if self.inbound:
            return channel.uniqueid != self.call_id
        return self.placed and channel.uniqueid == self.call_id

    def channel_on(self, device: str) -> Channel | None:
        for channel in self.channels.values():
            if channel.device == device:
                return channel
        return None


@dataclass
class CallStats:
    """What the day's calls came to: the figures `replay --json` prints."""

    calls: int = 0
    answered: int = 0
    abandoned: int = 0
    agents: Counter = field(default_factory=Counter)

    def add(self, call: Call) -> None:
        if not call.inbound:
            return
        self.calls += 1
        if call.handled_by:
            self.answered += 1
            for identity in call.legs:  # each agent leg once, however often it came back to the caller
                self.agents[identity] += 1
        elif call.caller_hung_up or call.end_reason == LINK_DOWN_REASON:
            self.abandoned += 1


class CallTracker:
    def __init__(self, bus: Bus, clock: Callable[[], float] = time.time, resync_from_stream: bool = False):
        self.bus = bus
        self.clock = clock
        # Replay reads the CoreShowChannels answer out of the recorded stream; live, the
        # AMI client hands it to reconcile() itself, and a late answer must not count.
        self.resync_from_stream = resync_from_stream
        self.calls: dict[str, Call] = {}
        self.stats = CallStats()
        self.unknown_events: Counter[str] = Counter()
        self._channels: dict[str, Channel] = {}  # uniqueid -> channel, every live channel
        self._by_name: dict[str, str] = {}  # channel name -> uniqueid
        self._bridges: dict[str, set[str]] = {}  # bridge id -> uniqueids in it
        self._bridge_of: dict[str, str] = {}  # uniqueid -> bridge id
        self._leg: dict[str, str] = {}  # uniqueid -> agent leg identity, where it is not the device
        # Kept beside the calls so the per-event paths stay one lookup: the first channel of each
        # placed call, and every channel that is some call's party (the customer's side).
        self._placed: dict[str, Call] = {}
        self._parties: set[str] = set()
        self._resync_items: dict[str, list[AmiMessage]] = {}  # ActionID -> resync list items (replay)
        self._answers = {"CoreShowChannels": self.reconcile, "BridgeList": self.forget_bridges}  # for RESYNC_LISTS
        handlers: dict[str, Callable] = {
            "Newchannel": self._on_newchannel,
            "Newstate": self._on_newstate,
            "Rename": self._on_rename,
            "HangupRequest": self._on_hangup_request,
            "Hangup": self._on_hangup,
            "DialBegin": self._on_dial_begin,
            "DialEnd": self._on_dial_end,
            "AgentCalled": self._on_agent_called,
            "BridgeEnter": self._on_bridge_enter,
            "BridgeLeave": self._on_bridge_leave,
            "BridgeMerge": self._on_bridge_merge,
            "MusicOnHoldStart": self._on_music_start,
            "MusicOnHoldStop": self._on_music_stop,
        }
        # Event name -> (its handler or None, whether the call's timeline keeps it): one lookup an event.
        self._routes: dict[str, tuple[Callable | None, bool]] = {
            name: (handlers.get(name), name in TIMELINE_EVENTS) for name in handlers.keys() | TIMELINE_EVENTS}

    @property
    def wanted_events(self) -> frozenset[str]:
        """The events this tracker reads; the AMI client need not parse any other."""
        return frozenset(self._routes)

    # -- input ------------------------------------------------------------------

    def handle(self, message: AmiMessage) -> None:
        """One AMI event as it arrives (the AMI client's handler)."""
        name = message.name
        route = self._routes.get(name)
        if route is None:
            if name not in ev.KNOWN_EVENTS:
                self.unknown_events[name] += 1
                if self.resync_from_stream:
                    self._collect_list_item(message)
            return  # most events (VarSet, Newexten, RTCP ...) need no decoding here
        event = ev.decode(message)
        if event.__class__ is ev.UnknownEvent:  # a known name without the headers it must have
            self.unknown_events[name] += 1
            return
        handler, on_timeline = route
        now = self.clock()
        snap = getattr(event, "channel", None) if on_timeline else None
        if snap is None:  # not kept, or with no channel of its own (a transfer names several)
            if handler is not None:
                handler(event, now)
            return
        channel = self._channels.get(snap.uniqueid)  # looked up before a Hangup drops it
        if handler is not None:
            handler(event, now)
            channel = channel or self._channels.get(snap.uniqueid)
        # The timeline names the channel as the tracker holds it, where it can (the event's block is read lazily).
        call = self.calls.get(channel.call_id if channel else snap.linkedid)
        if call is not None:
            call.timeline.append((now, name, channel.name if channel else snap.name))

    # -- channels ---------------------------------------------------------------

    def _on_newchannel(self, event: ev.Newchannel, now: float) -> None:
        self._add_channel(event.channel, now)

    def _add_channel(self, snap: ev.ChannelSnapshot, now: float, adopted: bool = False) -> Channel:
        # Three fields of the block for every channel; the caller's number and name only for a call's first.
        uniqueid, name, call_id, state = snap.uniqueid, snap.name, snap.linkedid, snap.state
        channel = Channel(uniqueid, name, call_id, state, device_of(name), is_local(name))
        self._channels[uniqueid] = channel
        self._by_name[name] = uniqueid
        call = self.calls.get(call_id)
        if call is None:
            # An inbound call starts with a channel that rings *us*: a trunk leg in state Ring.
            first = uniqueid == call_id and not channel.local
            inbound = first and (state == STATE_RING or adopted)
            number, caller_name = snap.caller_num, snap.caller_name
            call = Call(call_id, now, number, caller_name, inbound, placed=first and state == STATE_DOWN and not adopted,
                        party=call_id if inbound else "")
            if inbound:
                self._parties.add(uniqueid)
            elif call.placed:
                self._placed[uniqueid] = call
            self.calls[call_id] = call
            call.channels[uniqueid] = channel
            if inbound:
                self.bus.publish(CallArrived(call_id, name, number, caller_name, now))
            return channel
        call.channels[uniqueid] = channel
        return channel

    def _on_newstate(self, event: ev.Newstate, now: float) -> None:
        channel = self._channels.get(event.channel.uniqueid)
        if channel is None:
            return
        channel.state = event.channel.state
        call = self.calls[channel.call_id]
        if not call.is_agent_leg(channel):
            return  # the caller's own leg answers to the IVR, the dialled customer's to the agent
        if channel.state == STATE_RINGING:
            self.bus.publish(AgentLegRinging(call.call_id, channel.device, channel.name, now))
        elif channel.state == STATE_UP:
            self.bus.publish(AgentLegAnswered(call.call_id, channel.device, channel.name, now))

    def _on_rename(self, event: ev.Rename, now: float) -> None:
        channel = self._channels.get(event.channel.uniqueid)
        if channel is not None and event.new_name:
            self._by_name.pop(channel.name, None)
            channel.rename(event.new_name)
            self._by_name[channel.name] = channel.uniqueid

    def _on_hangup_request(self, event: ev.HangupRequest, now: float) -> None:
        # A HangupRequest on the caller's own leg means the caller hung up (a
        # dialplan or AGI hangup is a SoftHangupRequest instead).
        uniqueid = event.channel.uniqueid
        call = self.calls.get(uniqueid)  # only a call's first channel has its call's id
        if call is not None and event.channel.linkedid == uniqueid:
            call.caller_hung_up = True

    def _on_hangup(self, event: ev.Hangup, now: float) -> None:
        self._remove_channel(event.channel.uniqueid, event.cause, now, "")

    def _remove_channel(self, uniqueid: str, cause: int, now: float, reason: str) -> None:
        channel = self._channels.pop(uniqueid, None)
        if channel is None:
            return
        self._by_name.pop(channel.name, None)
        self._parties.discard(uniqueid)
        self._placed.pop(uniqueid, None)
        affected = self._calls_bridged_with(uniqueid) | {channel.call_id}
        self._leave_bridge(uniqueid)
        call = self.calls[channel.call_id]
        del call.channels[uniqueid]
        identity = self._leg.pop(uniqueid, None) or channel.device
        leg = call.legs.get(identity)
        if leg is not None and not any(self.leg_identity(u) == identity for u in call.channels):
            leg.end(now)  # the agent has left the call: no more talk or hold on this leg
        self._refresh_legs(now, affected)
        if call.is_agent_leg(channel):
            self.bus.publish(AgentLegEnded(call.call_id, channel.device, channel.name, cause, now))
        if not call.channels:
            del self.calls[call.call_id]
            call.ended_at = now
            call.end_reason = reason
            for leg in call.legs.values():
                leg.end(now)
            self.stats.add(call)
            if call.inbound or call.placed:
                self.bus.publish(CallEnded(call.call_id, cause, now, reason, tuple(call.timeline),
                                           tuple(leg.summary() for leg in call.legs.values())))

    # -- who is which agent leg --------------------------------------------------

    def _on_agent_called(self, event: ev.AgentCalled, now: float) -> None:
        # app_queue names the member it rings; a Local/...@agents/n member and
        # the phone its ;2 half dials are one leg under that name.
        interface = event.interface
        if event.dest is not None and interface:
            self._leg[event.dest.uniqueid] = interface
            partner = self._local_partner(event.dest.name)
            if partner:
                self._leg[partner] = interface

    def _on_dial_begin(self, event: ev.DialBegin, now: float) -> None:
        if event.channel is None:
            return
        uniqueid = event.channel.uniqueid
        placed = self._placed.get(uniqueid)
        if placed is not None and not placed.party:
            placed.party = event.dest.uniqueid  # the number the agent's leg dials is who the call is with
            self._parties.add(placed.party)
            return
        channel = self._channels.get(uniqueid)
        if channel is None or not channel.local:
            return
        member = self._leg.get(uniqueid)
        if member is not None:
            self._leg[event.dest.uniqueid] = member

    def _on_dial_end(self, event: ev.DialEnd, now: float) -> None:
        placed = self._placed.get(event.channel.uniqueid) if event.channel else None
        if placed is not None and event.dest.uniqueid == placed.party:
            self.bus.publish(OutboundDialEnded(placed.call_id, event.status, now))

    def _local_partner(self, name: str) -> str | None:
        if not is_local(name) or name[-2:] not in (";1", ";2"):
            return None
        other = name[:-1] + ("2" if name.endswith("1") else "1")
        return self._by_name.get(other)

    def leg_identity(self, uniqueid: str) -> str:
        channel = self._channels[uniqueid]
        return self._leg.get(uniqueid) or channel.device

    # -- bridges ------------------------------------------------------------------

    def _on_bridge_enter(self, event: ev.BridgeEnter, now: float) -> None:
        uniqueid = event.channel.uniqueid
        if uniqueid not in self._channels:
            return
        self._leave_bridge(uniqueid)
        bridge_id = event.bridge_id
        self._bridges.setdefault(bridge_id, set()).add(uniqueid)
        self._bridge_of[uniqueid] = bridge_id
        self._mark_handled(uniqueid, now)

    def _on_bridge_leave(self, event: ev.BridgeLeave, now: float) -> None:
        uniqueid = event.channel.uniqueid
        # A channel in no bridge is answered without reading the event's bridge id from its text.
        if uniqueid in self._bridge_of and self._bridge_of[uniqueid] == event.bridge_id:
            affected = self._calls_bridged_with(uniqueid)
            self._leave_bridge(uniqueid)
            self._refresh_legs(now, affected)

    def _on_bridge_merge(self, event: ev.BridgeMerge, now: float) -> None:
        moved = self._bridges.pop(event.from_bridge_id, set())
        into = self._bridges.setdefault(event.to_bridge_id, set())
        for uniqueid in moved:
            into.add(uniqueid)
            self._bridge_of[uniqueid] = event.to_bridge_id
        if moved:
            self._mark_handled(next(iter(moved)), now)

    def _leave_bridge(self, uniqueid: str) -> None:
        bridge_id = self._bridge_of.pop(uniqueid, None)
        if bridge_id is None:
            return
        members = self._bridges.get(bridge_id)
        if members is not None:
            members.discard(uniqueid)
            if not members:
                del self._bridges[bridge_id]

    def _joined(self, start: str) -> set[str]:
        """Every channel whose audio reaches `start`: through bridges and Local pairs."""
        bridges, bridge_of, channels = self._bridges, self._bridge_of, self._channels
        seen, todo = {start}, [start]
        while todo:
            uniqueid = todo.pop()
            neighbours: Iterable[str] = bridges.get(bridge_of[uniqueid], ()) if uniqueid in bridge_of else ()
            channel = channels.get(uniqueid)
            if channel is not None and channel.local:
                partner = self._local_partner(channel.name)
                if partner:
                    neighbours = [*neighbours, partner]
            for other in neighbours:
                if other not in seen:
                    seen.add(other)
                    todo.append(other)
        return seen

    def _mark_handled(self, uniqueid: str, now: float) -> None:
        joined = self._joined(uniqueid)
        parties = [self.calls[self._channels[u].call_id] for u in joined if u in self._parties]
        for call in parties:
            for identity in self._agent_legs(joined):
                call.legs.setdefault(identity, Leg(identity, now)).connect(now)

    def _agent_legs(self, joined: set[str]) -> set[str]:
        """The agent legs among these channels: every phone leg that is not some call's party."""
        legs, parties, channels = self._leg, self._parties, self._channels
        return {legs.get(u) or channels[u].device for u in joined if u not in parties and not channels[u].local}

    def _calls_bridged_with(self, uniqueid: str) -> set[str]:
        members = self._bridges.get(self._bridge_of.get(uniqueid, ""), ())
        return {self._channels[u].call_id for u in members if u in self._channels}

    def _refresh_legs(self, now: float, call_ids: set[str]) -> None:
        """A channel left a bridge or hung up: legs of these calls no longer joined to their caller stop talking."""
        calls = self.calls
        for call_id in call_ids:
            call = calls.get(call_id)
            if call is None or not call.legs:
                continue
            talking = [leg for leg in call.legs.values() if leg.connected_since is not None]
            if not talking:
                continue
            joined = self._agent_legs(self._joined(call.party)) if call.party in self._channels else set()
            for leg in talking:
                if leg.identity not in joined:
                    leg.disconnect(now)

    def _on_music_start(self, event: ev.MusicOnHoldStart, now: float) -> None:
        """The caller hears hold music: each agent leg still on the call is holding them."""
        call = self._party_call(event.channel.uniqueid)
        if call is None:
            return
        alive = {self.leg_identity(u) for u in call.channels if u != call.party}
        for leg in call.legs.values():
            if leg.identity in alive:
                leg.hold(now)

    def _on_music_stop(self, event: ev.MusicOnHoldStop, now: float) -> None:
        call = self._party_call(event.channel.uniqueid)
        if call is None:
            return
        for leg in call.legs.values():
            leg.unhold(now)

    def _party_call(self, uniqueid: str) -> Call | None:
        """The call this channel is the customer's side of, if it is."""
        channel = self._channels.get(uniqueid) if uniqueid in self._parties else None
        if channel is None:
            return None
        call = self.calls.get(channel.call_id)
        return call if call is not None and call.party == uniqueid else None

    # -- resync -------------------------------------------------------------------

    def reconcile(self, items: Iterable[AmiMessage]) -> None:
        """Make what we track match what the PBX says exists (CoreShowChannel items).

        Channels the PBX no longer has are ended as if hung up, their calls with
        the reason LINK_DOWN_REASON; channels we did not know are adopted;
        bridges are rebuilt from each item's BridgeId.
        """
        now = self.clock()
        found = [(item, snap) for item in items if (snap := ev.snapshot(item)) is not None and snap.uniqueid]
        live = {snap.uniqueid for _, snap in found}
        for uniqueid in [u for u in self._channels if u not in live]:
            self._remove_channel(uniqueid, 0, now, LINK_DOWN_REASON)
        moved: set[str] = set()  # calls whose channels changed bridge while we could not see it
        for item, snap in sorted(found, key=lambda pair: pair[1].uniqueid != pair[1].linkedid):  # callers first
            channel = self._channels.get(snap.uniqueid)
            if channel is None:
                channel = self._add_channel(snap, now, adopted=True)
                log.info("adopted a channel the PBX has", extra={"call_id": snap.linkedid})
            channel.state = snap.state
            bridge_id = item.get("BridgeId", "")
            if self._bridge_of.get(snap.uniqueid, "") != bridge_id:  # an empty BridgeId: in no bridge now
                moved |= self._calls_bridged_with(snap.uniqueid) | {channel.call_id}
                self._leave_bridge(snap.uniqueid)
                if bridge_id:
                    self._bridges.setdefault(bridge_id, set()).add(snap.uniqueid)
                    self._bridge_of[snap.uniqueid] = bridge_id
        self._refresh_legs(now, moved)  # legs no longer joined to their caller stop talking
        for uniqueid in list(self._bridge_of):
            self._mark_handled(uniqueid, now)

    def forget_bridges(self, items: Iterable[AmiMessage]) -> None:
        """Drop the bridges we hold that the PBX no longer lists (BridgeListItem items).

        Membership comes from the channels' BridgeId (reconcile): a BridgeListItem names a bridge
        and counts its channels but does not say which. This catches a bridge that went away
        between the two answers without its BridgeLeave reaching us.
        """
        listed = {item.get("BridgeUniqueid") for item in items}
        for bridge_id in [b for b in self._bridges if b not in listed]:
            members = list(self._bridges[bridge_id])
            moved = {self._channels[u].call_id for u in members if u in self._channels}
            for uniqueid in members:
                self._leave_bridge(uniqueid)
            self._refresh_legs(self.clock(), moved)

    async def resync(self, ami) -> None:
        """After every (re)connect: ask the PBX what exists (its channels, then its bridges) and
        reconcile with it, as each answer completes."""
        for action, _, _ in RESYNC_LISTS:
            await ami.send_list(action, on_complete=self._answers[action])

    def _collect_list_item(self, message: AmiMessage) -> None:
        """In a replayed stream the resync answers arrive as events: applied on their Complete."""
        action_id = message.get("ActionID")
        if action_id is None:
            return
        for action, item, complete in RESYNC_LISTS:
            if message.name == item:
                self._resync_items.setdefault(action_id, []).append(message)
            elif message.name == complete:
                self._answers[action](self._resync_items.pop(action_id, []))
