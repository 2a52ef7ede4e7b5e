"""Turns AMI channel events into Calls keyed by Linkedid.

Every channel Asterisk creates for one inbound call (the trunk leg, the agent
leg it dials) shares the Linkedid of the first channel; that is our call id.
The tracker keeps each call's channels and timeline and publishes domain
events on the bus. It never blocks: one AMI event is one dict lookup and a few
assignments.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from contactcentre.bus import Bus
from contactcentre.telephony.ami.protocol import AmiMessage
from contactcentre.telephony.events import (
    AgentLegAnswered,
    AgentLegEnded,
    AgentLegRinging,
    CallArrived,
    CallEnded,
)

log = logging.getLogger(__name__)

STATE_RINGING = 5
STATE_UP = 6


def device_of(channel: str) -> str:
    """`PJSIP/agent1-0000002a` -> `PJSIP/agent1`; Local channels keep their `;n` free name."""
    base = channel.split(";", 1)[0]
    head, sep, tail = base.rpartition("-")
    return head if sep and tail and all(c in "0123456789abcdef" for c in tail) else base


@dataclass(slots=True)
class Channel:
    uniqueid: str
    name: str
    call_id: str
    state: int
    caller_number: str
    caller_name: str

    @property
    def device(self) -> str:
        return device_of(self.name)


@dataclass(slots=True)
class Call:
    call_id: str
    started_at: float
    caller_number: str
    caller_name: str
    channels: dict[str, Channel] = field(default_factory=dict)
    timeline: list[tuple[float, str, str]] = field(default_factory=list)  # (time, event, channel)

    @property
    def caller_channel(self) -> Channel | None:
        return self.channels.get(self.call_id)

    def channel_on(self, device: str) -> Channel | None:
        for channel in self.channels.values():
            if channel.device == device:
                return channel
        return None


class CallTracker:
    def __init__(self, bus: Bus, clock: Callable[[], float] = time.time):
        self.bus = bus
        self.clock = clock
        self.calls: dict[str, Call] = {}
        self._channel_call: dict[str, str] = {}  # uniqueid -> call id
        self.event_counts: Counter[str] = Counter()
        self._handlers = {
            "Newchannel": self._on_newchannel,
            "Newstate": self._on_newstate,
            "Hangup": self._on_hangup,
        }

    def handle(self, message: AmiMessage) -> None:
        self.event_counts[message.name] += 1
        handler = self._handlers.get(message.name)
        if handler is not None:
            handler(message, self.clock())

    def _on_newchannel(self, message: AmiMessage, now: float) -> None:
        uniqueid = message.get("Uniqueid", "")
        call_id = message.get("Linkedid") or uniqueid
        channel = Channel(
            uniqueid=uniqueid,
            name=message.get("Channel", ""),
            call_id=call_id,
            state=_int(message.get("ChannelState")),
            caller_number=message.get("CallerIDNum", ""),
            caller_name=message.get("CallerIDName", ""),
        )
        call = self.calls.get(call_id)
        if call is None:
            call = Call(call_id, now, channel.caller_number, channel.caller_name)
            self.calls[call_id] = call
            call.channels[uniqueid] = channel
            self._channel_call[uniqueid] = call_id
            call.timeline.append((now, "Newchannel", channel.name))
            self.bus.publish(CallArrived(call_id, channel.name, channel.caller_number, channel.caller_name, now))
            return
        call.channels[uniqueid] = channel
        self._channel_call[uniqueid] = call_id
        call.timeline.append((now, "Newchannel", channel.name))

    def _on_newstate(self, message: AmiMessage, now: float) -> None:
        channel, call = self._find(message)
        if channel is None:
            return
        channel.state = _int(message.get("ChannelState"))
        call.timeline.append((now, f"Newstate {message.get('ChannelStateDesc', '')}", channel.name))
        if channel.uniqueid == call.call_id:
            return  # the caller's own leg: its answer is the IVR's, not an agent's
        if channel.state == STATE_RINGING:
            self.bus.publish(AgentLegRinging(call.call_id, channel.device, channel.name, now))
        elif channel.state == STATE_UP:
            self.bus.publish(AgentLegAnswered(call.call_id, channel.device, channel.name, now))

    def _on_hangup(self, message: AmiMessage, now: float) -> None:
        channel, call = self._find(message)
        if channel is None:
            return
        cause = _int(message.get("Cause"))
        del call.channels[channel.uniqueid]
        del self._channel_call[channel.uniqueid]
        call.timeline.append((now, "Hangup", channel.name))
        if channel.uniqueid != call.call_id:
            self.bus.publish(AgentLegEnded(call.call_id, channel.device, channel.name, cause, now))
        if not call.channels:
            del self.calls[call.call_id]
            self.bus.publish(CallEnded(call.call_id, cause, now))

    def _find(self, message: AmiMessage) -> tuple[Channel | None, Call | None]:
        uniqueid = message.get("Uniqueid", "")
        call_id = self._channel_call.get(uniqueid)
        if call_id is None:
            return None, None
        call = self.calls[call_id]
        return call.channels[uniqueid], call


def _int(value: str | None) -> int:
    try:
        return int(value or 0)
    except ValueError:
        return 0
