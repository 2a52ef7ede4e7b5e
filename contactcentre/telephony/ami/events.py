"""Typed AMI events: raw headers stop here.

`decode(message)` turns an AmiMessage into one of the dataclasses below, or
into `UnknownEvent` (kept whole, never dropped) for events we have no model of.
Header names are Asterisk 22's, as in ../shared/ami-captures/.
"""

from __future__ import annotations

import functools
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass

from contactcentre.telephony.ami.protocol import AmiMessage


class ChannelSnapshot(tuple):
    """The standard channel block (`Channel`, `ChannelState`, ... `Linkedid`) of an event, under a prefix
    (`Dest`, `Transferee` ...).

    Each field is read from the message when it is first asked for: a handler
    reads two or three of the eleven, and reading them all when the event
    arrived cost more than the rest of decoding it (bench/ami_ingest.py).
    `uniqueid` is read at once, because it tells whether the block is there.
    Immutable, like the events that carry it; equal when the fields are.
    """

    # A tuple underneath (message, prefix, uniqueid): read-only for free, and built in C.
    __slots__ = ()

    FIELDS = ("name", "uniqueid", "linkedid", "state", "caller_num", "caller_name", "connected_num",
              "connected_name", "context", "exten", "priority")

    def __new__(cls, message: AmiMessage, prefix: str, uniqueid: str) -> ChannelSnapshot:
        return tuple.__new__(cls, (message, prefix, uniqueid))

    uniqueid: str = property(operator.itemgetter(2))  # type: ignore[assignment]

    def _get(self, key: str) -> str | None:
        return self[0].get(self[1] + key)

    @property
    def name(self) -> str:
        return self._get("Channel") or ""

    @property
    def linkedid(self) -> str:
        return self._get("Linkedid") or self.uniqueid

    @property
    def state(self) -> int:
        return _int(self._get("ChannelState"))

    @property
    def caller_num(self) -> str:
        return _cid(self._get("CallerIDNum"))

    @property
    def caller_name(self) -> str:
        return _cid(self._get("CallerIDName"))

    @property
    def connected_num(self) -> str:
        return _cid(self._get("ConnectedLineNum"))

    @property
    def connected_name(self) -> str:
        return _cid(self._get("ConnectedLineName"))

    @property
    def context(self) -> str:
        return self._get("Context") or ""

    @property
    def exten(self) -> str:
        return self._get("Exten") or ""

    @property
    def priority(self) -> int:
        return _int(self._get("Priority"))

    def as_tuple(self) -> tuple:
        """Every field, in FIELDS order: one pass over the block when it is written as Asterisk writes it."""
        found = _block(self[1]).search(self[0].text)
        if found is None:
            return tuple(getattr(self, field) for field in self.FIELDS)
        name, state, _, num, cid_name, c_num, c_name, _, _, context, exten, priority, uniqueid, linkedid = (
            found.groups())
        return (name, uniqueid, linkedid or uniqueid, _int(state), _cid(num), _cid(cid_name), _cid(c_num),
                _cid(c_name), context, exten, _int(priority))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ChannelSnapshot) and self.as_tuple() == other.as_tuple()

    def __ne__(self, other: object) -> bool:
        return not self == other  # tuple's own would compare the messages

    def __hash__(self) -> int:
        return hash(self.as_tuple())

    def __repr__(self) -> str:
        return "ChannelSnapshot(" + ", ".join(f"{f}={getattr(self, f)!r}" for f in self.FIELDS) + ")"


UNKNOWN_CID = "<unknown>"  # Asterisk's caller ID when there is none
# The block as Asterisk 22 writes it (manager_channels.c), header for header, in this order.
_BLOCK = ("Channel", "ChannelState", "ChannelStateDesc", "CallerIDNum", "CallerIDName", "ConnectedLineNum",
          "ConnectedLineName", "Language", "AccountCode", "Context", "Exten", "Priority", "Uniqueid", "Linkedid")


@functools.cache
def _block(prefix: str) -> re.Pattern[str]:
    return re.compile("".join(f"\r\n{prefix}{key}: ([^\r\n]*)" for key in _BLOCK))


def snapshot(m: AmiMessage, prefix: str = "") -> ChannelSnapshot | None:
    """The channel block under `prefix`, or None if the event has none."""
    uniqueid = m.get(prefix + "Uniqueid")
    return None if uniqueid is None else _new_snapshot(ChannelSnapshot, (m, prefix, uniqueid))


_new_snapshot = tuple.__new__  # ChannelSnapshot(...) without the Python-level frame of its __new__


# -- channels -------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Newchannel:
    channel: ChannelSnapshot


@dataclass(frozen=True, slots=True)
class Newstate:
    channel: ChannelSnapshot


@dataclass(frozen=True, slots=True)
class NewCallerid:
    channel: ChannelSnapshot


@dataclass(frozen=True, slots=True)
class NewConnectedLine:
    channel: ChannelSnapshot


@dataclass(frozen=True, slots=True)
class Newexten:
    channel: ChannelSnapshot
    application: str
    app_data: str


@dataclass(frozen=True, slots=True)
class Rename:
    channel: ChannelSnapshot  # the channel under its old name
    new_name: str


@dataclass(frozen=True, slots=True)
class HangupRequest:
    channel: ChannelSnapshot
    cause: int


@dataclass(frozen=True, slots=True)
class SoftHangupRequest:
    channel: ChannelSnapshot
    cause: int


@dataclass(frozen=True, slots=True)
class Hangup:
    channel: ChannelSnapshot
    cause: int
    cause_text: str


@dataclass(frozen=True, slots=True)
class VarSet:
    channel: ChannelSnapshot | None  # None for a global variable
    variable: str
    value: str


@dataclass(frozen=True, slots=True)
class UserEvent:
    channel: ChannelSnapshot | None
    user_event: str
    headers: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class DTMFBegin:
    channel: ChannelSnapshot
    digit: str
    direction: str


@dataclass(frozen=True, slots=True)
class DTMFEnd:
    channel: ChannelSnapshot
    digit: str
    direction: str
    duration_ms: int


@dataclass(frozen=True, slots=True)
class Hold:
    channel: ChannelSnapshot
    music_class: str  # empty when Asterisk itself holds (the transferer during Atxfer)


@dataclass(frozen=True, slots=True)
class Unhold:
    channel: ChannelSnapshot


@dataclass(frozen=True, slots=True)
class MusicOnHoldStart:
    channel: ChannelSnapshot
    music_class: str


@dataclass(frozen=True, slots=True)
class MusicOnHoldStop:
    channel: ChannelSnapshot


# -- dialling -------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class DialBegin:
    channel: ChannelSnapshot | None  # None when an Originate dials
    dest: ChannelSnapshot
    dial_string: str


@dataclass(frozen=True, slots=True)
class DialState:
    channel: ChannelSnapshot | None
    dest: ChannelSnapshot
    status: str


@dataclass(frozen=True, slots=True)
class DialEnd:
    channel: ChannelSnapshot | None
    dest: ChannelSnapshot
    status: str  # ANSWER, CANCEL, NOANSWER, BUSY, CHANUNAVAIL ...


# -- bridges --------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class BridgeCreate:
    bridge_id: str


@dataclass(frozen=True, slots=True)
class BridgeDestroy:
    bridge_id: str


@dataclass(frozen=True, slots=True)
class BridgeEnter:
    bridge_id: str
    channel: ChannelSnapshot
    num_channels: int


@dataclass(frozen=True, slots=True)
class BridgeLeave:
    bridge_id: str
    channel: ChannelSnapshot
    num_channels: int


@dataclass(frozen=True, slots=True)
class BridgeMerge:
    to_bridge_id: str
    from_bridge_id: str


@dataclass(frozen=True, slots=True)
class LocalBridge:
    local_one: ChannelSnapshot
    local_two: ChannelSnapshot


@dataclass(frozen=True, slots=True)
class LocalOptimizationBegin:
    local_one: ChannelSnapshot
    local_two: ChannelSnapshot


@dataclass(frozen=True, slots=True)
class LocalOptimizationEnd:
    local_one: ChannelSnapshot
    local_two: ChannelSnapshot
    success: bool


@dataclass(frozen=True, slots=True)
class BlindTransfer:
    result: str
    transferer: ChannelSnapshot | None
    transferee: ChannelSnapshot | None
    bridge_id: str
    context: str
    extension: str


@dataclass(frozen=True, slots=True)
class AttendedTransfer:
    result: str
    orig_transferer: ChannelSnapshot | None
    second_transferer: ChannelSnapshot | None
    transferee: ChannelSnapshot | None
    transfer_target: ChannelSnapshot | None
    dest_type: str
    dest_bridge_id: str


# -- queues (app_queue, when the PBX routes) ----------------------------------------

@dataclass(frozen=True, slots=True)
class QueueCallerJoin:
    channel: ChannelSnapshot
    queue: str
    position: int


@dataclass(frozen=True, slots=True)
class QueueCallerLeave:
    channel: ChannelSnapshot
    queue: str
    position: int


@dataclass(frozen=True, slots=True)
class QueueCallerAbandon:
    channel: ChannelSnapshot
    queue: str
    position: int


@dataclass(frozen=True, slots=True)
class AgentCalled:
    channel: ChannelSnapshot
    dest: ChannelSnapshot | None
    queue: str
    interface: str
    member_name: str


@dataclass(frozen=True, slots=True)
class AgentConnect:
    channel: ChannelSnapshot
    dest: ChannelSnapshot | None
    queue: str
    interface: str
    member_name: str


@dataclass(frozen=True, slots=True)
class AgentComplete:
    channel: ChannelSnapshot
    dest: ChannelSnapshot | None
    queue: str
    interface: str
    reason: str
    talk_time: int


# -- the PBX itself -----------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class DeviceStateChange:
    device: str
    state: str


@dataclass(frozen=True, slots=True)
class ContactStatus:
    uri: str
    status: str
    aor: str
    endpoint: str


@dataclass(frozen=True, slots=True)
class FullyBooted:
    status: str


@dataclass(frozen=True, slots=True)
class Shutdown:
    shutdown: str
    restart: bool


@dataclass(frozen=True, slots=True)
class Reload:
    module: str
    status: str


@dataclass(frozen=True, slots=True)
class UnknownEvent:
    """An event we have no model of: kept whole and counted, never dropped."""

    name: str
    headers: tuple[tuple[str, str], ...]


# -- decoding -------------------------------------------------------------------------

def _queue_fields(m: AmiMessage) -> dict:
    return {"channel": snapshot(m), "queue": m.get("Queue", ""), "position": _int(m.get("Position"))}


def _agent_fields(m: AmiMessage) -> dict:
    return {"channel": snapshot(m), "dest": snapshot(m, "Dest"), "queue": m.get("Queue", ""),
            "interface": m.get("Interface", "")}


_DECODERS: dict[str, Callable[[AmiMessage], object]] = {
    "Newchannel": lambda m: Newchannel(snapshot(m)),
    "Newstate": lambda m: Newstate(snapshot(m)),
    "NewCallerid": lambda m: NewCallerid(snapshot(m)),
    "NewConnectedLine": lambda m: NewConnectedLine(snapshot(m)),
    "Newexten": lambda m: Newexten(snapshot(m), m.get("Application", ""), m.get("AppData", "")),
    "Rename": lambda m: Rename(snapshot(m), m.get("Newname", "")),
    "HangupRequest": lambda m: HangupRequest(snapshot(m), _int(m.get("Cause"))),
    "SoftHangupRequest": lambda m: SoftHangupRequest(snapshot(m), _int(m.get("Cause"))),
    "Hangup": lambda m: Hangup(snapshot(m), _int(m.get("Cause")), m.get("Cause-txt", "")),
    "VarSet": lambda m: VarSet(snapshot(m), m.get("Variable", ""), m.get("Value", "")),
    "UserEvent": lambda m: UserEvent(snapshot(m), m.get("UserEvent", ""), tuple(m.headers)),
    "DTMFBegin": lambda m: DTMFBegin(snapshot(m), m.get("Digit", ""), m.get("Direction", "")),
    "DTMFEnd": lambda m: DTMFEnd(snapshot(m), m.get("Digit", ""), m.get("Direction", ""),
                                 _int(m.get("DurationMs"))),
    "Hold": lambda m: Hold(snapshot(m), m.get("MusicClass", "")),
    "Unhold": lambda m: Unhold(snapshot(m)),
    "MusicOnHoldStart": lambda m: MusicOnHoldStart(snapshot(m), m.get("Class", "")),
    "MusicOnHoldStop": lambda m: MusicOnHoldStop(snapshot(m)),
    "DialBegin": lambda m: DialBegin(snapshot(m), snapshot(m, "Dest"), m.get("DialString", "")),
    "DialState": lambda m: DialState(snapshot(m), snapshot(m, "Dest"), m.get("DialStatus", "")),
    "DialEnd": lambda m: DialEnd(snapshot(m), snapshot(m, "Dest"), m.get("DialStatus", "")),
    "BridgeCreate": lambda m: BridgeCreate(m.get("BridgeUniqueid", "")),
    "BridgeDestroy": lambda m: BridgeDestroy(m.get("BridgeUniqueid", "")),
    "BridgeEnter": lambda m: BridgeEnter(m.get("BridgeUniqueid", ""), snapshot(m), _int(m.get("BridgeNumChannels"))),
    "BridgeLeave": lambda m: BridgeLeave(m.get("BridgeUniqueid", ""), snapshot(m), _int(m.get("BridgeNumChannels"))),
    "BridgeMerge": lambda m: BridgeMerge(m.get("ToBridgeUniqueid", ""), m.get("FromBridgeUniqueid", "")),
    "LocalBridge": lambda m: LocalBridge(snapshot(m, "LocalOne"), snapshot(m, "LocalTwo")),
    "LocalOptimizationBegin": lambda m: LocalOptimizationBegin(snapshot(m, "LocalOne"), snapshot(m, "LocalTwo")),
    "LocalOptimizationEnd": lambda m: LocalOptimizationEnd(snapshot(m, "LocalOne"), snapshot(m, "LocalTwo"),
                                                           m.get("Success", "").lower() in ("yes", "true", "1")),
    "BlindTransfer": lambda m: BlindTransfer(m.get("Result", ""), snapshot(m, "Transferer"),
                                             snapshot(m, "Transferee"), m.get("BridgeUniqueid", ""),
                                             m.get("Context", ""), m.get("Extension", "")),
    "AttendedTransfer": lambda m: AttendedTransfer(
        m.get("Result", ""), snapshot(m, "OrigTransferer"), snapshot(m, "SecondTransferer"),
        snapshot(m, "Transferee"), snapshot(m, "TransferTarget"), m.get("DestType", ""),
        m.get("DestBridgeUniqueid", "")),
    "QueueCallerJoin": lambda m: QueueCallerJoin(**_queue_fields(m)),
    "QueueCallerLeave": lambda m: QueueCallerLeave(**_queue_fields(m)),
    "QueueCallerAbandon": lambda m: QueueCallerAbandon(**_queue_fields(m)),
    "AgentCalled": lambda m: AgentCalled(**_agent_fields(m), member_name=m.get("MemberName", "")),
    "AgentConnect": lambda m: AgentConnect(**_agent_fields(m), member_name=m.get("MemberName", "")),
    "AgentComplete": lambda m: AgentComplete(**_agent_fields(m), reason=m.get("Reason", ""),
                                             talk_time=_int(m.get("TalkTime"))),
    "DeviceStateChange": lambda m: DeviceStateChange(m.get("Device", ""), m.get("State", "")),
    "ContactStatus": lambda m: ContactStatus(m.get("URI", ""), m.get("ContactStatus", ""), m.get("AOR", ""),
                                             m.get("EndpointName", "")),
    "FullyBooted": lambda m: FullyBooted(m.get("Status", "")),
    "Shutdown": lambda m: Shutdown(m.get("Shutdown", ""), m.get("Restart", "").lower() in ("true", "yes")),
    "Reload": lambda m: Reload(m.get("Module", ""), m.get("Status", "")),
}
# The channel blocks an event must have; one without is malformed and kept as unknown.
_REQUIRED: dict[str, tuple[str, ...]] = {
    **{name: ("channel",) for name in _DECODERS if name not in {
        "VarSet", "UserEvent", "BridgeCreate", "BridgeDestroy", "BridgeMerge", "DeviceStateChange", "ContactStatus",
        "FullyBooted", "Shutdown", "Reload", "LocalBridge", "LocalOptimizationBegin", "LocalOptimizationEnd",
        "BlindTransfer", "AttendedTransfer", "DialBegin", "DialState", "DialEnd"}},
    **{name: ("dest",) for name in ("DialBegin", "DialState", "DialEnd")},
    **{name: ("local_one", "local_two") for name in ("LocalBridge", "LocalOptimizationBegin", "LocalOptimizationEnd")},
}
KNOWN_EVENTS = frozenset(_DECODERS)


def decode(message: AmiMessage) -> object:
    name = message.name
    decoder = _DECODERS.get(name)
    if decoder is None:
        return UnknownEvent(name, tuple(message.headers))
    event = decoder(message)
    for field in _REQUIRED.get(name, ()):
        if getattr(event, field) is None:
            return UnknownEvent(name, tuple(message.headers))  # malformed: kept whole, not half-read
    return event


def _int(value: str | None) -> int:
    try:
        return int(value or 0)
    except ValueError:
        return 0


def _cid(value: str | None) -> str:
    return "" if value is None or value == UNKNOWN_CID else value
