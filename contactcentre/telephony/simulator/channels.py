"""Simulated channels and the header blocks Asterisk 22 puts on channel events."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from contactcentre.telephony.simulator.bridges import SimBridge
    from contactcentre.telephony.simulator.local import LocalPair

STATE_DESC = {0: "Down", 4: "Ring", 5: "Ringing", 6: "Up"}
DOWN, RING, RINGING, UP = 0, 4, 5, 6
HANG_UP = "hangup"  # in SimChannel.keys: the far end hangs up at that prompt instead of keying anything

CAUSE_TEXT = {0: "Unknown", 16: "Normal Clearing", 17: "User busy", 19: "No user responding",
              21: "Call Rejected", 26: "Answered elsewhere", 32: "Circuit/channel congestion"}


@dataclass(eq=False)
class SimChannel:
    name: str
    uniqueid: str
    linkedid: str
    state: int
    caller_num: str
    caller_name: str
    context: str
    exten: str
    priority: int = 1
    connected_num: str = "<unknown>"
    connected_name: str = "<unknown>"
    language: str = "en"
    accountcode: str = ""
    created: float = 0.0
    variables: dict[str, str] = field(default_factory=dict)
    application: str = ""
    application_data: str = ""
    dnid: str = ""

    # What the simulator knows beyond the snapshot Asterisk publishes.
    bridge: SimBridge | None = None
    has_pbx: bool = False  # a dialplan runs on it; otherwise it is a dialled or originated leg
    owned: bool = False  # a Dial() or an Originate is waiting on it and will hang it up itself
    hangup_cause: int | None = None
    goto: tuple[str, str, int] | None = None  # where a Redirect or a transfer sends it next
    moh_class: str | None = None
    local: LocalPair | None = None  # set on both halves of a Local/...;1/;2 pair
    mixmonitors: list[str] = field(default_factory=list)
    published_cep: tuple[str, str, int] | None = None  # Newexten is sent only when this changes
    # The features.conf transfer codes work for it in its bridge: Dial()/Queue() option t (the called
    # party) or T (the caller); a leg no such option applies to keeps them.
    may_transfer: bool = True
    soft_hangup_sent: bool = False  # a SoftHangupRequest went out: the end of its dialplan sends none
    destroyed: bool = False
    # Run just before its `Hangup` (app_queue's AgentComplete for a caller redirected away from a member).
    on_hangup: list[Callable[[], None]] = field(default_factory=list)
    # Dialplan hangup handlers (CHANNEL(hangup_handler_push)): (context, exten, priority), run last first
    # as the channel is destroyed, whatever it was doing (PbxThread.run_hangup_handlers).
    hangup_handlers: list[tuple[str, str, int]] = field(default_factory=list)
    # What the far end keys in when a prompt waits for keys (GET DATA, WAIT FOR DIGIT), one entry per
    # prompt, in order: keys such as "4" or "12#", "" to press nothing (the prompt times out), or
    # HANG_UP. Keys a prompt does not take (past its maximum, after #) are left for the next one.
    keys: deque[str] = field(default_factory=deque)
    # The far end picked up: a ringing desk phone, or the customer a carrier leg calls.
    answered: asyncio.Event = field(default_factory=asyncio.Event)
    # A hangup or a Redirect is pending: whatever runs on the channel must look up.
    interrupted: asyncio.Event = field(default_factory=asyncio.Event)
    # Set each time the channel leaves a bridge, so the Dial() that joined it can move on.
    left_bridge: asyncio.Event = field(default_factory=asyncio.Event)
    hung_up: asyncio.Event = field(default_factory=asyncio.Event)  # the channel is gone (`Hangup` sent)

    @property
    def device(self) -> str:
        """`PJSIP/agent1-0000002a` -> `PJSIP/agent1`; `Local/2003@xfer-00000000;1` -> `Local/2003@xfer`."""
        return self.name.split(";", 1)[0].rpartition("-")[0]

    @property
    def endpoint(self) -> str:
        return self.device.partition("/")[2]

    @property
    def bridge_id(self) -> str:
        return self.bridge.id if self.bridge is not None else ""

    @property
    def dead(self) -> bool:
        return self.hangup_cause is not None

    @property
    def is_phone(self) -> bool:
        """A desk phone of the contact centre (not the carrier trunk, not a Local channel)."""
        return self.name.startswith("PJSIP/") and self.endpoint != "carrier"

    def headers(self, prefix: str = "") -> list[tuple[str, str]]:
        """The channel block, in Asterisk's order; a prefix (`Dest`, `Transferer`...) names the role."""
        return [
            (f"{prefix}Channel", self.name),
            (f"{prefix}ChannelState", str(self.state)),
            (f"{prefix}ChannelStateDesc", STATE_DESC[self.state]),
            (f"{prefix}CallerIDNum", self.caller_num or "<unknown>"),
            (f"{prefix}CallerIDName", self.caller_name or "<unknown>"),
            (f"{prefix}ConnectedLineNum", self.connected_num),
            (f"{prefix}ConnectedLineName", self.connected_name),
            (f"{prefix}Language", self.language),
            (f"{prefix}AccountCode", self.accountcode),
            (f"{prefix}Context", self.context),
            (f"{prefix}Exten", self.exten),
            (f"{prefix}Priority", str(self.priority)),
            (f"{prefix}Uniqueid", self.uniqueid),
            (f"{prefix}Linkedid", self.linkedid),
        ]


async def until_interrupted(channel: SimChannel, seconds: float | None) -> bool:
    """Wait `seconds` (None: for ever) unless something happens to the channel (it hangs up or is
    moved); True if it did."""
    try:
        await asyncio.wait_for(channel.interrupted.wait(), seconds)
        return True
    except TimeoutError:
        return False


def bridge_headers(bridge_id: str, count: int, prefix: str = "") -> list[tuple[str, str]]:
    return [(f"{prefix}BridgeUniqueid", bridge_id), (f"{prefix}BridgeType", "basic"),
            (f"{prefix}BridgeTechnology", "simple_bridge"), (f"{prefix}BridgeCreator", "<unknown>"),
            (f"{prefix}BridgeName", "<unknown>"), (f"{prefix}BridgeNumChannels", str(count)),
            (f"{prefix}BridgeVideoSourceMode", "none")]
