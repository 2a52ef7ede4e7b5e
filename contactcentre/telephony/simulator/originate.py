"""AMI Originate, synchronous and `Async: true`, as ../shared/ami-captures/resync.ami shows it.

A synchronous Originate answers only once the call is answered or has failed:
`Response: Error` / `Message: Originate failed` for an endpoint that does not
exist. An async one answers `Originate successfully queued` at once and later
sends an `OriginateResponse` event carrying the ActionID: `Response: Failure`,
`Reason: 0` and `Uniqueid: <unknown>` when no channel could be made. Reason is
the last control frame Asterisk saw on the channel: 1 hung up, 3 ringing (no
answer in time), 4 answered, 5 busy. Once answered, the channel runs
Context/Exten/Priority or the Application (ChanSpy, for a supervisor).

`ChannelId` names the new channel's Uniqueid (and so the call's Linkedid):
manager.c refuses one longer than AST_MAX_PUBLIC_UNIQUEID (149) with
`Response: Error`, and a channel cannot be made under a Uniqueid a live
channel already has (Failure, Reason 0).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from contactcentre.telephony.ami.protocol import AmiMessage
from contactcentre.telephony.simulator.ami_server import ActionHandler, AmiSession
from contactcentre.telephony.simulator.applications import PbxThread, first
from contactcentre.telephony.simulator.channels import DOWN, UP, SimChannel
from contactcentre.telephony.simulator.local import LocalPair

if TYPE_CHECKING:
    from contactcentre.telephony.simulator.pbx import SimulatedPbx

REASON_FAILED, REASON_HANGUP, REASON_NO_ANSWER, REASON_ANSWERED, REASON_BUSY = 0, 1, 3, 4, 5
DEFAULT_TIMEOUT_MS = 30000  # manager.c's default when the action has no Timeout
MAX_CHANNEL_ID = 149  # AST_MAX_PUBLIC_UNIQUEID


@dataclass
class OriginateRequest:
    action_id: str | None
    channel: str
    context: str
    exten: str
    priority: int
    application: str
    data: str
    timeout: float  # seconds
    caller_num: str
    caller_name: str
    variables: list[tuple[str, str]] = field(default_factory=list)
    channel_id: str = ""

    @property
    def technology(self) -> str:
        return self.channel.partition("/")[0]

    @property
    def resource(self) -> str:
        return self.channel.partition("/")[2]


class OriginateActions:
    def __init__(self, pbx: SimulatedPbx):
        self.pbx = pbx

    def handlers(self) -> dict[str, ActionHandler]:
        return {"Originate": self.originate}

    async def originate(self, session: AmiSession, action: AmiMessage) -> None:
        request = self._request(session, action)
        if request is None:
            return
        if (action.get("Async") or "").lower() in ("true", "yes", "1", "on"):
            session.respond(action, "Success", [("Message", "Originate successfully queued")])
            channel, reason = await self._place(request)
            self._respond_event(request, channel, reason)
            if channel is not None:
                self._run(channel, request)
            return
        channel, reason = await self._place(request)
        if channel is None:
            session.respond(action, "Error", [("Message", "Originate failed")])
            return
        session.respond(action, "Success", [("Message", "Originate successfully queued")])
        self._run(channel, request)

    def _request(self, session: AmiSession, action: AmiMessage) -> OriginateRequest | None:
        name = action.get("Channel") or ""
        context, exten = action.get("Context") or "", action.get("Exten") or ""
        priority_text, timeout_text = action.get("Priority") or "", action.get("Timeout") or ""
        application = action.get("Application") or ""
        problem = None
        if not name:
            problem = "Channel not specified"
        elif priority_text and not priority_text.isdigit():
            problem = "Invalid priority"
        elif timeout_text and not timeout_text.lstrip("-").isdigit():
            problem = "Invalid timeout"
        elif "/" not in name:
            problem = "Invalid channel"
        elif not application and not (exten and context and priority_text and int(priority_text) > 0):
            problem = "Originate with 'Exten' requires 'Context' and 'Priority'"
        elif len(action.get("ChannelId") or "") > MAX_CHANNEL_ID:
            problem = f"Uniqueid length exceeds maximum of {MAX_CHANNEL_ID}"
        if problem is not None:
            session.respond(action, "Error", [("Message", problem)])
            return None
        number, caller_name = _parse_caller_id(action.get("CallerID") or "")
        variables = [tuple(v.partition("=")[::2]) for v in action.get_all("Variable") if "=" in v]
        return OriginateRequest(action.get("ActionID"), name, context, exten, int(priority_text or 0), application,
                                action.get("Data") or "", int(timeout_text or DEFAULT_TIMEOUT_MS) / 1000, number,
                                caller_name, variables, action.get("ChannelId") or "")

    async def _place(self, request: OriginateRequest) -> tuple[SimChannel | None, int]:
        """Make the channel and wait for its far end to answer; (None, reason) when it did not."""
        if request.technology == "Local":
            return await self._place_local(request)
        number, at, endpoint = request.resource.partition("@")
        if not at:
            number, endpoint = "", request.resource
        if request.technology != "PJSIP" or not self.pbx.endpoint_exists(endpoint):
            return None, REASON_FAILED  # no such endpoint: no channel is made at all
        pbx = self.pbx
        if request.channel_id and any(c.uniqueid == request.channel_id for c in pbx.channels.values()):
            return None, REASON_FAILED  # that Uniqueid is taken: the channel cannot be allocated
        channel = pbx.new_channel(f"PJSIP/{endpoint}", request.caller_num or number, request.caller_name,
                                  "from-carrier" if endpoint == "carrier" else "from-agents", "s", state=DOWN,
                                  uniqueid=request.channel_id or None)
        channel.owned = True
        # Originate's CallerID is also the connected line, so the phone shows it while ringing.
        channel.connected_num = request.caller_num or "<unknown>"
        channel.connected_name = request.caller_name or "<unknown>"
        for key, value in request.variables:
            pbx.set_variable(channel, key, value)
        pbx.start_ringing(channel)
        pbx.device_state(channel.device, "RINGING")
        outcome = await first({"answer": channel.answered.wait(), "gone": channel.interrupted.wait()},
                              request.timeout if request.timeout > 0 else None)
        if outcome != "answer":
            reason = REASON_NO_ANSWER if outcome is None else (
                REASON_BUSY if channel.hangup_cause == 17 else REASON_HANGUP)
            pbx.destroy(channel, channel.hangup_cause or 19)
            return None, reason
        pbx.set_state(channel, UP)
        pbx.device_state(channel.device, "INUSE")
        return channel, REASON_ANSWERED

    async def _place_local(self, request: OriginateRequest) -> tuple[SimChannel | None, int]:
        """Local/exten@context: ;2 runs that dialplan and ;1 is answered when ;2 is. An extension that
        does not exist fails as in resync.ami (;2 then ;1 hang up with cause 0, device INVALID)."""
        pbx = self.pbx
        exten, _, context = request.resource.partition("/")[0].partition("@")
        pair = LocalPair(pbx, exten, context or "default")
        one, two = pair.one, pair.two
        one.application, one.application_data = "AppDial2", "(Outgoing Line)"
        pbx.channel_event("Newexten", one, ("Extension", one.exten), ("Application", one.application),
                          ("AppData", one.application_data), privilege="dialplan,all")
        if pbx.dialplan.find(context, exten) is None:
            for half in (two, one):
                pbx.destroy(half, 0)
                pbx.device_state(pair.device, "INVALID")
            return None, REASON_FAILED
        pbx.start_pbx(two, context, exten, 1)
        outcome = await first({"answer": one.answered.wait(), "gone": one.interrupted.wait(),
                               "ended": two.hung_up.wait()}, request.timeout if request.timeout > 0 else None)
        if outcome != "answer":
            pbx.request_hangup(two)
            pbx.destroy(one, 0)
            return None, REASON_NO_ANSWER if outcome is None else REASON_HANGUP
        return one, REASON_ANSWERED

    def _respond_event(self, request: OriginateRequest, channel: SimChannel | None, reason: int) -> None:
        target = ([("Application", request.application), ("Data", request.data)] if request.application
                  else [("Context", request.context), ("Exten", request.exten)])
        self.pbx.emit("OriginateResponse", [
            *([("ActionID", request.action_id)] if request.action_id is not None else []),
            ("Response", "Success" if channel is not None else "Failure"),
            ("Channel", channel.name if channel is not None else request.channel), *target,
            ("Reason", str(reason)), ("Uniqueid", channel.uniqueid if channel is not None else "<unknown>"),
            ("CallerIDNum", request.caller_num or "<unknown>"), ("CallerIDName", request.caller_name or "<unknown>")])

    def _run(self, channel: SimChannel, request: OriginateRequest) -> None:
        if request.application:
            self.pbx.spawn(PbxThread(self.pbx, channel).run_application(request.application, request.data),
                           f"sim-app-{channel.name}")
        else:
            self.pbx.start_pbx(channel, request.context, request.exten, request.priority)


def _parse_caller_id(text: str) -> tuple[str, str]:
    """`"Jane Smith" <+441632960101>` -> (+441632960101, Jane Smith); a bare number or name works too."""
    text = text.strip()
    if "<" in text and text.endswith(">"):
        name, _, number = text[:-1].partition("<")
        return number.strip(), name.strip().strip('"')
    if text.lstrip("+").isdigit():
        return text, ""
    return "", text.strip('"')
