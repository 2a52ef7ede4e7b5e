"""Typed AMI events: raw headers stop here.

`decode(message)` turns an AmiMessage into one of the dataclasses below, or
into `UnknownEvent` (kept whole, never dropped) for events we have no model of.
Header names are Asterisk 22's, as in ../shared/ami-captures/.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from contactcentre.telephony.ami.protocol import AmiMessage


@dataclass(frozen=True, slots=True)
class ChannelSnapshot:
    """The standard channel block (`Channel`, `ChannelState`, ... `Linkedid`) of an event."""

    name: str
    uniqueid: str
    linkedid: str
    state: int
    caller_num: str
    caller_name: str
    connected_num: str
    connected_name: str
    context: str
    exten: str
    priority: int


def snapshot(m: AmiMessage, prefix: str = "") -> ChannelSnapshot | None:
    f = m.fields()
    uniqueid = f.get(f"{prefix}Uniqueid")
    if uniqueid is None:
        return None
    return ChannelSnapshot(
        name=f.get(f"{prefix}Channel", ""),
        uniqueid=uniqueid,
        linkedid=f.get(f"{prefix}Linkedid") or uniqueid,
        state=_int(f.get(f"{prefix}ChannelState")),
        caller_num=_cid(f.get(f"{prefix}CallerIDNum")),
        caller_name=_cid(f.get(f"{prefix}CallerIDName")),
        connected_num=_cid(f.get(f"{prefix}ConnectedLineNum")),
        connected_name=_cid(f.get(f"{prefix}ConnectedLineName")),
        context=f.get(f"{prefix}Context", ""),
        exten=f.get(f"{prefix}Exten", ""),
        priority=_int(f.get(f"{prefix}Priority")),
    )


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
# Events whose headers must name a channel; one without is malformed and kept as unknown.
_NEEDS_CHANNEL = {name for name in _DECODERS if name not in {
    "VarSet", "UserEvent", "BridgeCreate", "BridgeDestroy", "BridgeMerge", "DeviceStateChange", "ContactStatus",
    "FullyBooted", "Shutdown", "Reload", "LocalBridge", "LocalOptimizationBegin", "LocalOptimizationEnd",
    "BlindTransfer", "AttendedTransfer", "DialBegin", "DialState", "DialEnd"}}
KNOWN_EVENTS = frozenset(_DECODERS)


def decode(message: AmiMessage) -> object:
    decoder = _DECODERS.get(message.name)
    if decoder is None or (message.name in _NEEDS_CHANNEL and message.get("Uniqueid") is None):
        return UnknownEvent(message.name, tuple(message.headers))
    event = decoder(message)
    if message.name.startswith(("Dial", "Local")) and any(v is None for v in _required(event)):
        return UnknownEvent(message.name, tuple(message.headers))
    return event


def _required(event: object) -> tuple:
    if isinstance(event, DialBegin | DialState | DialEnd):
        return (event.dest,)
    if isinstance(event, LocalBridge | LocalOptimizationBegin | LocalOptimizationEnd):
        return (event.local_one, event.local_two)
    return ()


def _int(value: str | None) -> int:
    try:
        return int(value or 0)
    except ValueError:
        return 0


def _cid(value: str | None) -> str:
    return "" if value in (None, "<unknown>") else value
