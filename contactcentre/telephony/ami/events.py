"""Typed AMI events: raw headers stop here.

`decode(message)` turns an AmiMessage into one of the event classes below, or
into `UnknownEvent` (kept whole, never dropped) for events we have no model of.
Header names are Asterisk 22's, as in ../shared/ami-captures/.

An event is a read-only view of its message: its channel blocks are found when
it is decoded (an event without the block it must have is malformed), every
other field is read from the message when it is first asked for. The tracker
reads one or two fields of each event it decodes, and reading them all up
front was half of what tracking a call cost (bench/ami_ingest.py).
"""

from __future__ import annotations

import functools
import itertools
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

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

    @property
    def name(self) -> str:
        return self[0].get(self[1] + "Channel") or ""

    @property
    def linkedid(self) -> str:
        return self[0].get(self[1] + "Linkedid") or self.uniqueid

    @property
    def state(self) -> int:
        return _int(self[0].get(self[1] + "ChannelState"))

    @property
    def caller_num(self) -> str:
        return _cid(self[0].get(self[1] + "CallerIDNum"))

    @property
    def caller_name(self) -> str:
        return _cid(self[0].get(self[1] + "CallerIDName"))

    @property
    def connected_num(self) -> str:
        return _cid(self[0].get(self[1] + "ConnectedLineNum"))

    @property
    def connected_name(self) -> str:
        return _cid(self[0].get(self[1] + "ConnectedLineName"))

    @property
    def context(self) -> str:
        return self[0].get(self[1] + "Context") or ""

    @property
    def exten(self) -> str:
        return self[0].get(self[1] + "Exten") or ""

    @property
    def priority(self) -> int:
        return _int(self[0].get(self[1] + "Priority"))

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


def _int(value: str | None) -> int:
    try:
        return int(value or 0)
    except ValueError:
        return 0


def _cid(value: str | None) -> str:
    return "" if value is None or value == UNKNOWN_CID else value


# -- the event classes' machinery -------------------------------------------------

class Header:
    """A field read from the event's message on each use: `Header("Cause", _int)`."""

    __slots__ = ("key", "convert")

    def __init__(self, key: str, convert: Callable[[str | None], Any] | None = None):
        self.key = key
        self.convert = convert

    def __get__(self, event: AmiEvent | None, owner: type | None = None) -> Any:
        if event is None:
            return self
        value = event[0].get(self.key)
        return self.convert(value) if self.convert is not None else value or ""


class AmiEvent(tuple):
    """One typed event: a tuple (message, its channel blocks in BLOCKS order).

    BLOCKS names each channel block and its header prefix; REQUIRED, the blocks
    an event of this kind cannot be without. Both are read by `decode`.
    """

    __slots__ = ()
    BLOCKS: ClassVar[tuple[tuple[str, str], ...]] = ()  # (field, header prefix)
    REQUIRED: ClassVar[tuple[str, ...]] = ()
    FIELDS: ClassVar[tuple[str, ...]] = ()  # every field, blocks first, for repr and comparisons
    PREFIXES: ClassVar[tuple[str, ...]] = ()  # BLOCKS' prefixes, and where the REQUIRED ones sit in the tuple
    REQUIRED_AT: ClassVar[tuple[int, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for index, (field, _) in enumerate(cls.BLOCKS, start=1):
            setattr(cls, field, property(operator.itemgetter(index)))
        cls.PREFIXES = tuple(prefix for _, prefix in cls.BLOCKS)
        cls.REQUIRED_AT = tuple(index for index, (field, _) in enumerate(cls.BLOCKS, start=1) if field in cls.REQUIRED)
        cls.FIELDS = tuple(field for field, _ in cls.BLOCKS) + tuple(
            name for name, value in vars(cls).items() if isinstance(value, Header))

    def as_dict(self) -> dict[str, Any]:
        return {field: getattr(self, field) for field in self.FIELDS}

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and self.as_dict() == other.as_dict()  # type: ignore[attr-defined]

    def __ne__(self, other: object) -> bool:
        return not self == other

    def __hash__(self) -> int:
        return hash((type(self), tuple(self.as_dict().values())))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(" + ", ".join(f"{k}={v!r}" for k, v in self.as_dict().items()) + ")"


_CHANNEL = (("channel", ""),)
_CHANNEL_AND_DEST = (("channel", ""), ("dest", "Dest"))
_LOCAL_PAIR = (("local_one", "LocalOne"), ("local_two", "LocalTwo"))


def _yes(value: str | None) -> bool:
    return (value or "").lower() in ("yes", "true", "1")


# -- channels -------------------------------------------------------------------

class Newchannel(AmiEvent):
    __slots__ = ()
    BLOCKS, REQUIRED = _CHANNEL, ("channel",)
    channel: ChannelSnapshot


class Newstate(AmiEvent):
    __slots__ = ()
    BLOCKS, REQUIRED = _CHANNEL, ("channel",)
    channel: ChannelSnapshot


class NewCallerid(AmiEvent):
    __slots__ = ()
    BLOCKS, REQUIRED = _CHANNEL, ("channel",)
    channel: ChannelSnapshot


class NewConnectedLine(AmiEvent):
    __slots__ = ()
    BLOCKS, REQUIRED = _CHANNEL, ("channel",)
    channel: ChannelSnapshot


class Newexten(AmiEvent):
    __slots__ = ()
    BLOCKS, REQUIRED = _CHANNEL, ("channel",)
    channel: ChannelSnapshot
    application = Header("Application")
    app_data = Header("AppData")


class Rename(AmiEvent):
    __slots__ = ()
    BLOCKS, REQUIRED = _CHANNEL, ("channel",)
    channel: ChannelSnapshot  # the channel under its old name
    new_name = Header("Newname")


class HangupRequest(AmiEvent):
    __slots__ = ()
    BLOCKS, REQUIRED = _CHANNEL, ("channel",)
    channel: ChannelSnapshot
    cause = Header("Cause", _int)


class SoftHangupRequest(AmiEvent):
    __slots__ = ()
    BLOCKS, REQUIRED = _CHANNEL, ("channel",)
    channel: ChannelSnapshot
    cause = Header("Cause", _int)


class Hangup(AmiEvent):
    __slots__ = ()
    BLOCKS, REQUIRED = _CHANNEL, ("channel",)
    channel: ChannelSnapshot
    cause = Header("Cause", _int)
    cause_text = Header("Cause-txt")


class VarSet(AmiEvent):
    __slots__ = ()
    BLOCKS = _CHANNEL
    channel: ChannelSnapshot | None  # None for a global variable
    variable = Header("Variable")
    value = Header("Value")


class UserEvent(AmiEvent):
    __slots__ = ()
    BLOCKS = _CHANNEL
    channel: ChannelSnapshot | None
    user_event = Header("UserEvent")

    @property
    def headers(self) -> tuple[tuple[str, str], ...]:
        return tuple(self[0].headers)


class DTMFBegin(AmiEvent):
    __slots__ = ()
    BLOCKS, REQUIRED = _CHANNEL, ("channel",)
    channel: ChannelSnapshot
    digit = Header("Digit")
    direction = Header("Direction")


class DTMFEnd(AmiEvent):
    __slots__ = ()
    BLOCKS, REQUIRED = _CHANNEL, ("channel",)
    channel: ChannelSnapshot
    digit = Header("Digit")
    direction = Header("Direction")
    duration_ms = Header("DurationMs", _int)


class Hold(AmiEvent):
    __slots__ = ()
    BLOCKS, REQUIRED = _CHANNEL, ("channel",)
    channel: ChannelSnapshot
    music_class = Header("MusicClass")  # empty when Asterisk itself holds (the transferer during Atxfer)


class Unhold(AmiEvent):
    __slots__ = ()
    BLOCKS, REQUIRED = _CHANNEL, ("channel",)
    channel: ChannelSnapshot


class MusicOnHoldStart(AmiEvent):
    __slots__ = ()
    BLOCKS, REQUIRED = _CHANNEL, ("channel",)
    channel: ChannelSnapshot
    music_class = Header("Class")


class MusicOnHoldStop(AmiEvent):
    __slots__ = ()
    BLOCKS, REQUIRED = _CHANNEL, ("channel",)
    channel: ChannelSnapshot


# -- dialling -------------------------------------------------------------------

class DialBegin(AmiEvent):
    __slots__ = ()
    BLOCKS, REQUIRED = _CHANNEL_AND_DEST, ("dest",)
    channel: ChannelSnapshot | None  # None when an Originate dials
    dest: ChannelSnapshot
    dial_string = Header("DialString")


class DialState(AmiEvent):
    __slots__ = ()
    BLOCKS, REQUIRED = _CHANNEL_AND_DEST, ("dest",)
    channel: ChannelSnapshot | None
    dest: ChannelSnapshot
    status = Header("DialStatus")


class DialEnd(AmiEvent):
    __slots__ = ()
    BLOCKS, REQUIRED = _CHANNEL_AND_DEST, ("dest",)
    channel: ChannelSnapshot | None
    dest: ChannelSnapshot
    status = Header("DialStatus")  # ANSWER, CANCEL, NOANSWER, BUSY, CHANUNAVAIL ...


# -- bridges --------------------------------------------------------------------

class BridgeCreate(AmiEvent):
    __slots__ = ()
    bridge_id = Header("BridgeUniqueid")


class BridgeDestroy(AmiEvent):
    __slots__ = ()
    bridge_id = Header("BridgeUniqueid")


class BridgeEnter(AmiEvent):
    __slots__ = ()
    BLOCKS, REQUIRED = _CHANNEL, ("channel",)
    channel: ChannelSnapshot
    bridge_id = Header("BridgeUniqueid")
    num_channels = Header("BridgeNumChannels", _int)


class BridgeLeave(AmiEvent):
    __slots__ = ()
    BLOCKS, REQUIRED = _CHANNEL, ("channel",)
    channel: ChannelSnapshot
    bridge_id = Header("BridgeUniqueid")
    num_channels = Header("BridgeNumChannels", _int)


class BridgeMerge(AmiEvent):
    __slots__ = ()
    to_bridge_id = Header("ToBridgeUniqueid")
    from_bridge_id = Header("FromBridgeUniqueid")


class LocalBridge(AmiEvent):
    __slots__ = ()
    BLOCKS, REQUIRED = _LOCAL_PAIR, ("local_one", "local_two")
    local_one: ChannelSnapshot
    local_two: ChannelSnapshot


class LocalOptimizationBegin(AmiEvent):
    __slots__ = ()
    BLOCKS, REQUIRED = _LOCAL_PAIR, ("local_one", "local_two")
    local_one: ChannelSnapshot
    local_two: ChannelSnapshot


class LocalOptimizationEnd(AmiEvent):
    __slots__ = ()
    BLOCKS, REQUIRED = _LOCAL_PAIR, ("local_one", "local_two")
    local_one: ChannelSnapshot
    local_two: ChannelSnapshot
    success = Header("Success", _yes)


class BlindTransfer(AmiEvent):
    __slots__ = ()
    BLOCKS = (("transferer", "Transferer"), ("transferee", "Transferee"))
    transferer: ChannelSnapshot | None
    transferee: ChannelSnapshot | None
    result = Header("Result")
    bridge_id = Header("BridgeUniqueid")
    context = Header("Context")
    extension = Header("Extension")


class AttendedTransfer(AmiEvent):
    __slots__ = ()
    BLOCKS = (("orig_transferer", "OrigTransferer"), ("second_transferer", "SecondTransferer"),
              ("transferee", "Transferee"), ("transfer_target", "TransferTarget"))
    orig_transferer: ChannelSnapshot | None
    second_transferer: ChannelSnapshot | None
    transferee: ChannelSnapshot | None
    transfer_target: ChannelSnapshot | None
    result = Header("Result")
    dest_type = Header("DestType")
    dest_bridge_id = Header("DestBridgeUniqueid")


# -- queues (app_queue, when the PBX routes) ----------------------------------------

class QueueCallerJoin(AmiEvent):
    __slots__ = ()
    BLOCKS, REQUIRED = _CHANNEL, ("channel",)
    channel: ChannelSnapshot
    queue = Header("Queue")
    position = Header("Position", _int)


class QueueCallerLeave(AmiEvent):
    __slots__ = ()
    BLOCKS, REQUIRED = _CHANNEL, ("channel",)
    channel: ChannelSnapshot
    queue = Header("Queue")
    position = Header("Position", _int)


class QueueCallerAbandon(AmiEvent):
    __slots__ = ()
    BLOCKS, REQUIRED = _CHANNEL, ("channel",)
    channel: ChannelSnapshot
    queue = Header("Queue")
    position = Header("Position", _int)


class AgentCalled(AmiEvent):
    __slots__ = ()
    BLOCKS, REQUIRED = _CHANNEL_AND_DEST, ("channel",)
    channel: ChannelSnapshot
    dest: ChannelSnapshot | None
    queue = Header("Queue")
    interface = Header("Interface")
    member_name = Header("MemberName")


class AgentConnect(AmiEvent):
    __slots__ = ()
    BLOCKS, REQUIRED = _CHANNEL_AND_DEST, ("channel",)
    channel: ChannelSnapshot
    dest: ChannelSnapshot | None
    queue = Header("Queue")
    interface = Header("Interface")
    member_name = Header("MemberName")


class AgentComplete(AmiEvent):
    __slots__ = ()
    BLOCKS, REQUIRED = _CHANNEL_AND_DEST, ("channel",)
    channel: ChannelSnapshot
    dest: ChannelSnapshot | None
    queue = Header("Queue")
    interface = Header("Interface")
    reason = Header("Reason")
    talk_time = Header("TalkTime", _int)


# -- the PBX itself -----------------------------------------------------------------

class DeviceStateChange(AmiEvent):
    __slots__ = ()
    device = Header("Device")
    state = Header("State")


class ContactStatus(AmiEvent):
    __slots__ = ()
    uri = Header("URI")
    status = Header("ContactStatus")
    aor = Header("AOR")
    endpoint = Header("EndpointName")
    roundtrip_usec = Header("RoundtripUsec", _int)  # the last qualify's round trip; 0 when not qualified


class FullyBooted(AmiEvent):
    __slots__ = ()
    status = Header("Status")


class Shutdown(AmiEvent):
    __slots__ = ()
    shutdown = Header("Shutdown")
    restart = Header("Restart", lambda value: (value or "").lower() in ("true", "yes"))


class Reload(AmiEvent):
    __slots__ = ()
    module = Header("Module")
    status = Header("Status")


@dataclass(frozen=True, slots=True)
class UnknownEvent:
    """An event we have no model of: kept whole and counted, never dropped."""

    name: str
    headers: tuple[tuple[str, str], ...]


# -- decoding -------------------------------------------------------------------------

_CLASSES: dict[str, type[AmiEvent]] = {cls.__name__: cls for cls in AmiEvent.__subclasses__()}
KNOWN_EVENTS = frozenset(_CLASSES)
_new_event = tuple.__new__


def decode(message: AmiMessage) -> AmiEvent | UnknownEvent:
    cls = _CLASSES.get(message.name)
    if cls is None:
        return UnknownEvent(message.name, tuple(message.headers))
    blocks = cls.BLOCKS
    if not blocks:
        return _new_event(cls, (message,))
    if len(blocks) == 1:  # most events: one channel block, and no tuple of blocks to build
        channel = snapshot(message, blocks[0][1])
        if channel is None and cls.REQUIRED:
            return UnknownEvent(message.name, tuple(message.headers))  # malformed: kept whole, not half-read
        return _new_event(cls, (message, channel))
    found = (message, *map(snapshot, itertools.repeat(message), cls.PREFIXES))
    for index in cls.REQUIRED_AT:
        if found[index] is None:
            return UnknownEvent(message.name, tuple(message.headers))
    return _new_event(cls, found)

