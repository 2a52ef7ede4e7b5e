"""Call control the console asks for, as AMI actions a real Asterisk 22 accepts.

Every method sends the action Asterisk documents (action names and keys as in
its AMI reference) and raises AmiError with Asterisk's own message when the
answer is `Response: Error`. Dialplan places are the ones
config/asterisk/extensions.conf defines: from-agents (agents' calls out),
xfer (transfer targets) and cc-hold (hold without the phone).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from contactcentre.telephony.ami.client import AmiClient, AmiError

AGENT_CONTEXT = "from-agents"
TRANSFER_CONTEXT = "xfer"
HOLD_CONTEXT = "cc-hold"
RING_TIMEOUT_VARIABLE = "CC_RING_TIMEOUT"  # seconds from-agents lets the dialled number ring
HELD_VARIABLE = "CC_HELD"  # set on the waiting leg: the channel cc-hold's `resume` bridges back
HOLDER_VARIABLE = "CC_HOLDER"  # set on the held channel: the waiting leg cc-hold ends if the held one hangs up
# Originate's Reason is the last control frame Asterisk saw on the new channel.
ORIGINATE_REASONS = {0: "no such endpoint, or it could not be called", 1: "hung up", 3: "not answered in time",
                     5: "busy", 8: "congestion"}


class SpyMode(StrEnum):
    LISTEN = "listen"
    WHISPER = "whisper"  # the supervisor talks to the agent only
    BARGE = "barge"  # the supervisor talks to both


# ChanSpy options: q no beep and no channel name read out, w whisper, B barge into both sides.
SPY_OPTIONS = {SpyMode.LISTEN: "q", SpyMode.WHISPER: "qw", SpyMode.BARGE: "qB"}


class OriginateFailed(AmiError):
    """The PBX took the Originate but the call did not come up: `OriginateResponse` said Failure."""

    def __init__(self, channel: str, reason: int):
        why = ORIGINATE_REASONS.get(reason, "failed")
        super().__init__("Originate", f"{channel}: {why} (Reason {reason})")
        self.channel = channel
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Originated:
    channel: str  # the new channel, e.g. PJSIP/agent1-0000002a
    uniqueid: str


@dataclass(frozen=True, slots=True)
class HeldCall:
    """A call on hold through the hold context: `channel` hears music, `peer` waits in silence."""

    channel: str
    peer: str
    context: str


class PbxCommands:
    def __init__(self, ami: AmiClient):
        self._ami = ami

    async def answer(self, device: str) -> None:
        """Make a ringing desk phone pick up: SIP NOTIFY `Event: talk`, which
        Yealink, Polycom and Snom phones honour (res_pjsip_notify)."""
        technology, _, endpoint = device.partition("/")
        if technology != "PJSIP" or not endpoint:
            raise ValueError(f"device {device!r}: remote answer needs a PJSIP/<endpoint> device")
        await self._ami.send("PJSIPNotify", {"Endpoint": endpoint}, variables={"Event": "talk"})

    async def hangup(self, channel: str) -> None:
        await self._ami.send("Hangup", {"Channel": channel, "Cause": 16})

    # -- calls out ----------------------------------------------------------------

    async def originate(self, channel: str, *, context: str, exten: str, priority: int = 1,
                        caller_id: str | None = None, variables: Mapping[str, object] | None = None,
                        timeout: float = 30, channel_id: str | None = None) -> Originated:
        """Ring `channel` (PJSIP/agent1) for up to `timeout` s; once it answers it runs
        context/exten/priority. Returns when `OriginateResponse` says how it went; OriginateFailed
        carries its Reason. `caller_id` (`"Name" <number>`) is what the phone shows. `channel_id`
        becomes the new channel's Uniqueid, and so the Linkedid of the whole call: the caller knows
        the call's id before the first event about it arrives."""
        keys: dict[str, object] = {"Channel": channel, "Context": context, "Exten": exten, "Priority": priority}
        if channel_id:
            keys["ChannelId"] = channel_id
        return await self._originate(keys, caller_id, variables, timeout)

    async def call_agent_then_number(self, agent_device: str, number: str, caller_id: str, *,
                                     call_id: str | None = None, agent_timeout: float = 30,
                                     number_timeout: int | None = None) -> Originated:
        """Ring the agent's phone (for up to `agent_timeout` s); when the agent answers, the
        from-agents dialplan dials `number` through the carrier, for `number_timeout` s
        (CC_RING_TIMEOUT; the dialplan's own default when None). `caller_id` shows on the agent's
        phone and, unless the dialplan sets its own, is presented to the customer. `call_id`: see
        originate's `channel_id`."""
        if not re.fullmatch(r"\+?[0-9]+", number):
            raise ValueError(f"number {number!r}: digits only, with an optional leading +")
        variables = {RING_TIMEOUT_VARIABLE: number_timeout} if number_timeout else None
        return await self.originate(agent_device, context=AGENT_CONTEXT, exten=number, caller_id=caller_id,
                                    variables=variables, timeout=agent_timeout, channel_id=call_id)

    async def spy(self, supervisor_device: str, target_channel: str, mode: SpyMode | str,
                  timeout: float = 30) -> Originated:
        """Ring the supervisor's phone; once answered it listens to (or whispers to, or barges
        into) `target_channel` through ChanSpy."""
        options = SPY_OPTIONS[SpyMode(mode)]
        keys = {"Channel": supervisor_device, "Application": "ChanSpy", "Data": f"{target_channel},{options}"}
        return await self._originate(keys, None, None, timeout)

    async def _originate(self, keys: dict[str, object], caller_id: str | None,
                         variables: Mapping[str, object] | None, timeout: float) -> Originated:
        keys = {**keys, "Timeout": int(timeout * 1000), "Async": "true"}
        if caller_id:
            keys["CallerID"] = caller_id
        # The event comes once the phone answered or gave up: allow the ring time and a margin.
        event = await self._ami.send_and_wait_event("Originate", keys, "OriginateResponse", variables=variables,
                                                    event_timeout=timeout + self._ami.settings.action_timeout)
        if event.get("Response", "").lower() != "success":
            raise OriginateFailed(str(keys["Channel"]), int(event.get("Reason") or 0))
        return Originated(event.get("Channel", ""), event.get("Uniqueid", ""))

    # -- moving calls ---------------------------------------------------------------

    async def redirect(self, channel: str, context: str, exten: str, priority: int = 1,
                       extra_channel: str | None = None) -> None:
        """Send `channel` (and `extra_channel`, to the same place) to context/exten/priority. A party
        left alone in the bridge it leaves is hung up, as Asterisk does."""
        keys: dict[str, object] = {"Channel": channel, "Context": context, "Exten": exten, "Priority": priority}
        if extra_channel:
            keys["ExtraChannel"] = extra_channel
        await self._ami.send("Redirect", keys)

    async def blind_transfer(self, channel: str, context: str, exten: str) -> None:
        """`channel` is the transferer (the agent's leg): the party it talks to goes to context/exten."""
        await self._ami.send("BlindTransfer", {"Channel": channel, "Context": context, "Exten": exten})

    async def attended_transfer(self, channel: str, exten: str, context: str = TRANSFER_CONTEXT) -> None:
        """The transferer (`channel`) consults exten@context while its party hears music; hanging
        up the transferer then completes the transfer. Needs the atxfer code in features.conf."""
        await self._ami.send("Atxfer", {"Channel": channel, "Exten": exten, "Context": context})

    async def cancel_attended_transfer(self, channel: str) -> None:
        """Drop the consultation and take the transferer back (the atxferabort code in features.conf)."""
        await self._ami.send("CancelAtxfer", {"Channel": channel})

    async def hold(self, channel: str, hold_context: str = HOLD_CONTEXT) -> HeldCall:
        """Put `channel` (the customer) on hold through the hold context: one Redirect moves it to
        the music (`s`) and the party it talks to (BRIDGEPEER) to wait in silence (`wait`), so
        neither is hung up. The waiting leg remembers the held one in CC_HELD for resume(), and the
        held one the waiting leg in CC_HOLDER, so that whichever hangs up first takes the other
        along (the customer to the survey, the silent leg away: the hold context's hangup handlers)."""
        peer = (await self._ami.send("Getvar", {"Channel": channel, "Variable": "BRIDGEPEER"})).get("Value") or ""
        if not peer or "," in peer:
            raise AmiError("Hold", f"{channel} is not in a two-party call (BRIDGEPEER {peer!r})")
        await self._ami.send("Setvar", {"Channel": peer, "Variable": HELD_VARIABLE, "Value": channel})
        await self._ami.send("Setvar", {"Channel": channel, "Variable": HOLDER_VARIABLE, "Value": peer})
        await self._ami.send("Redirect", {
            "Channel": channel, "Context": hold_context, "Exten": "s", "Priority": 1,
            "ExtraChannel": peer, "ExtraContext": hold_context, "ExtraExten": "wait", "ExtraPriority": 1})
        return HeldCall(channel, peer, hold_context)

    async def resume(self, held: HeldCall) -> None:
        """Back from hold: the waiting leg goes to the hold context's `resume`, whose Bridge() takes
        the held channel out of the music and joins them again."""
        await self._ami.send("Redirect", {"Channel": held.peer, "Context": held.context, "Exten": "resume",
                                          "Priority": 1})

    # -- recording ------------------------------------------------------------------

    async def start_recording(self, channel: str, filename: str) -> None:
        """MixMonitor: record both directions of `channel` into `filename` (relative names go to
        Asterisk's monitor directory; the extension picks the format, e.g. .wav)."""
        await self._ami.send("MixMonitor", {"Channel": channel, "File": filename})

    async def stop_recording(self, channel: str) -> None:
        await self._ami.send("StopMixMonitor", {"Channel": channel})
