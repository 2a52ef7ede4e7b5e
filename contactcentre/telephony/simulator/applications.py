"""What Asterisk's PBX thread does for one channel: run its dialplan, one application at a time.

The applications are the ones config/asterisk/extensions.conf, the captures'
extensions.conf and the server's FastAGI `EXEC` use, in one table
(`APPLICATIONS`). Each returns what FastAGI reports for it (`200 result=N`): 0
when it went on, -1 when the channel is gone or was taken elsewhere, as
app_dial and friends return. As in Asterisk, -1 also ends the dialplan (Dial()
and Queue() after the called party hung up: no `n,Hangup()` step runs, see
queue-localmembers.ami), unless a Redirect moved the channel elsewhere.

Dial()'s `g` option is the exception: when the called party hangs up, Dial
returns 0 and the caller, still up, carries on (app_dial.c: with OPT_GO_ON and
no hangup on the caller's channel the result is 0); a caller that hung up or
was redirected away still gets -1.

When a channel's dialplan ends, Asterisk sends one SoftHangupRequest (cause
16) before its Hangup, unless one was sent already (dialplan Hangup()): so a
caller who hangs up while queued shows HangupRequest ... SoftHangupRequest,
Hangup (queue-basic.ami, agi-ivr.ami call 3).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from contactcentre.telephony.simulator.agi_client import SHORT_MEDIA, run_agi
from contactcentre.telephony.simulator.channels import DOWN, UP, SimChannel, until_interrupted
from contactcentre.telephony.simulator.dialplan import Step, evaluate, substitute

if TYPE_CHECKING:
    from contactcentre.telephony.simulator.bridges import SimBridge
    from contactcentre.telephony.simulator.pbx import SimulatedPbx

log = logging.getLogger(__name__)

SPY_SCAN = 0.2  # seconds between ChanSpy's looks for a channel to spy on


class PbxThread:
    """The dialplan running on one channel, from a place in it until the channel hangs up."""

    def __init__(self, pbx: SimulatedPbx, channel: SimChannel):
        self.pbx = pbx
        self.channel = channel
        self._jump: int | None = None

    async def run(self, context: str, exten: str, priority: int = 1) -> None:
        channel = self.channel
        channel.has_pbx = True
        channel.context, channel.exten, channel.priority = context, exten, priority
        try:
            while not channel.dead and channel.has_pbx:
                step = self._next_step()
                if step is None:
                    break  # off the end of the extension (autofallthrough) or nowhere to go: hang up
                if step.app.lower() not in APPLICATIONS:
                    log.warning("simulator has no dialplan application %r: hanging up", step.app,
                                extra={"channel": channel.name})
                    break  # Asterisk ends the channel's dialplan too ("No application ... for extension")
                result = await self.execute(step.app, self.expand(step.data), publish=True)
                if channel.goto is not None and not channel.dead:
                    self._take_goto()
                elif result < 0:
                    break  # "Spawn extension ... exited non-zero": the dialplan is over
                elif self._jump is not None:
                    channel.priority, self._jump = self._jump, None
                else:
                    channel.priority += 1
        except Exception:
            log.exception("simulated dialplan failed", extra={"channel": channel.name})
        finally:
            if channel.has_pbx:
                self._hang_up()
            elif not channel.dead:
                channel.interrupted.clear()  # taken by Bridge(): it lives on in the new bridge

    def run_hangup_handlers(self) -> None:
        """The channel's hangup handlers, last pushed first, each up to its Return(): as ast_hangup()
        runs them, before the channel is unlinked and its Hangup sent, whatever it was doing.

        Run to completion here and now, as they must be quick (Asterisk runs them in the hangup
        path): an application that would wait (a Wait(), a Playback()) ends the handler with a
        warning, as one returning -1 ends it in Asterisk.
        """
        channel, plan = self.channel, self.pbx.dialplan
        where = channel.context, channel.exten, channel.priority  # a subroutine's Return comes back here
        while channel.hangup_handlers:
            handler = channel.hangup_handlers.pop()
            self.pbx.channel_event("HangupHandlerRun", channel, _handler(handler), privilege="dialplan,all")
            channel.context, channel.exten, channel.priority = handler
            while (step := plan.step(channel.context, channel.exten, channel.priority)) is not None:
                if step.app.lower() == "return" or self._run_at_once(step) < 0:
                    break
                if self._jump is not None:
                    channel.priority, self._jump = self._jump, None
                else:
                    channel.priority += 1
        channel.context, channel.exten, channel.priority = where

    def _run_at_once(self, step: Step) -> int:
        running = self.execute(step.app, self.expand(step.data), publish=True)
        try:
            running.send(None)
        except StopIteration as done:
            return done.value
        except Exception:
            log.exception("simulated hangup handler failed", extra={"channel": self.channel.name})
            return -1
        running.close()
        log.warning("simulator: %s() would wait in a hangup handler: handler ended", step.app,
                    extra={"channel": self.channel.name})
        return -1

    def _hang_up(self) -> None:
        channel = self.channel
        if not channel.destroyed and not channel.soft_hangup_sent:
            self.pbx.soft_hangup_request(channel)
        self.pbx.destroy(channel)

    async def run_application(self, app: str, data: str) -> None:
        """An Originate with Application: the answered channel runs just that, then hangs up."""
        channel = self.channel
        channel.has_pbx = True
        try:
            await self.execute(app, data)
        except Exception:
            log.exception("simulated application failed", extra={"channel": channel.name})
        finally:
            if channel.has_pbx:
                self.pbx.destroy(channel)

    def _next_step(self) -> Step | None:
        channel, plan = self.channel, self.pbx.dialplan
        step = plan.step(channel.context, channel.exten, channel.priority)
        if step is None and channel.priority == 1 and plan.find(channel.context, channel.exten) is None \
                and plan.step(channel.context, "i", 1) is not None:
            channel.exten = "i"  # an extension the context does not have: its `i` extension runs
            step = plan.step(channel.context, "i", 1)
        return step

    def _take_goto(self) -> None:
        channel = self.channel
        channel.context, channel.exten, channel.priority = channel.goto
        channel.goto = None
        channel.interrupted.clear()

    async def execute(self, app: str, data: str, *, publish: bool = False) -> int:
        """Run one application; `publish` (a dialplan step, not an AGI EXEC) sends `Newexten` when
        the place in the dialplan changed, as Asterisk does."""
        channel = self.channel
        channel.application, channel.application_data = app, data
        if publish and (channel.context, channel.exten, channel.priority) != channel.published_cep:
            channel.published_cep = (channel.context, channel.exten, channel.priority)
            self.pbx.channel_event("Newexten", channel, ("Extension", channel.exten), ("Application", app),
                                   ("AppData", data), privilege="dialplan,all")
        handler = APPLICATIONS.get(app.lower())
        if handler is None:
            return -2  # what FastAGI EXEC reports for an application that does not exist
        return await handler(self, data)

    def jump(self, target: str) -> None:
        """A label, a priority, or exten,priority / context,exten,priority (GotoIf's targets)."""
        channel = self.channel
        parts = [p.strip() for p in target.split(",")]
        if len(parts) == 3:
            channel.context = parts.pop(0)
        if len(parts) == 2:
            channel.exten = parts.pop(0)
        where = parts[0]
        if where.isdigit():
            self._jump = int(where)
            return
        extension = self.pbx.dialplan.find(channel.context, channel.exten)
        priority = extension.priority_of(where) if extension is not None else None
        if priority is None:
            log.warning("dialplan label %r not found", where, extra={"channel": channel.name})
            self.pbx.request_hangup(channel, 16, event="SoftHangupRequest")
            return
        self._jump = priority

    def expand(self, data: str) -> str:
        return substitute(data, self.variable)

    def variable(self, name: str) -> str | None:
        channel = self.channel
        if name.startswith("IMPORT(") and name.endswith(")"):  # IMPORT(channel,variable): another channel's
            other, _, wanted = name[len("IMPORT("):-1].partition(",")
            found = self.pbx.find_channel(other.strip()) if other.strip() else None
            return PbxThread(self.pbx, found).variable(wanted.strip()) if found is not None else None
        special = {"EXTEN": channel.exten, "CONTEXT": channel.context, "PRIORITY": str(channel.priority),
                   "CHANNEL": channel.name, "UNIQUEID": channel.uniqueid,
                   "CALLERID(num)": channel.caller_num, "CALLERID(name)": channel.caller_name}
        if name in channel.variables:
            return channel.variables[name]
        if name in special:
            return special[name]
        return self.pbx.dialplan.globals.get(name)


App = Callable[[PbxThread, str], Awaitable[int]]


async def app_noop(thread: PbxThread, data: str) -> int:
    return 0


async def app_answer(thread: PbxThread, data: str) -> int:
    channel = thread.channel
    if channel.state != UP:
        thread.pbx.set_state(channel, UP)
        thread.pbx.device_state(channel.device, "INUSE")
    return 0


async def app_hangup(thread: PbxThread, data: str) -> int:
    cause = data.strip()
    thread.pbx.request_hangup(thread.channel, int(cause) if cause.isdigit() else 16, event="SoftHangupRequest")
    return -1


async def app_gotoif(thread: PbxThread, data: str) -> int:
    condition, _, targets = data.partition("?")
    if_true, _, if_false = targets.partition(":")
    target = if_true if evaluate(condition) else if_false
    if target:
        thread.jump(target)
    return 0


async def app_goto(thread: PbxThread, data: str) -> int:
    thread.jump(data)
    return 0


async def app_agi(thread: PbxThread, data: str) -> int:
    # The file says agi://${CC_HOST}:4573/inbound; the simulator's server is wherever the app started
    # it, so the simulator dials the host and port of its own agi_url, asking for the file's script.
    status = await run_agi(thread, data.split(",")[0].strip())
    thread.pbx.set_variable(thread.channel, "AGISTATUS", status)
    return -1 if status == "HANGUP" else 0


async def app_wait(thread: PbxThread, data: str) -> int:
    seconds = float(data) if data.strip() else 0.0
    return -1 if await until_interrupted(thread.channel, seconds) else 0


async def app_start_moh(thread: PbxThread, data: str) -> int:
    thread.pbx.start_moh(thread.channel, data.split(",")[0] or "default")
    return 0


async def app_stop_moh(thread: PbxThread, data: str) -> int:
    thread.pbx.stop_moh(thread.channel)
    return 0


async def app_music_on_hold(thread: PbxThread, data: str) -> int:
    music_class, _, duration = data.partition(",")
    thread.pbx.start_moh(thread.channel, music_class or "default")
    try:
        interrupted = await until_interrupted(thread.channel, float(duration) if duration.strip() else None)
    finally:
        thread.pbx.stop_moh(thread.channel)
    return -1 if interrupted else 0


async def app_queue(thread: PbxThread, data: str) -> int:
    """Queue(name,options,URL,announceoverride,timeout): app_queue simulated, see queue_calls.py."""
    return await thread.pbx.queue_app.run(thread, data)


async def app_set(thread: PbxThread, data: str) -> int:
    """Set(NAME=value); a function on the left (CDR(userfield)=...) is written without a VarSet.
    CHANNEL(hangup_handler_push)=[[context,]exten,]priority adds a hangup handler,
    CHANNEL(hangup_handler_pop)= takes the last one off (and pushes its value, if one is given)."""
    name, _, value = data.partition("=")
    name = name.strip()
    channel = thread.channel
    if name.lower() in ("channel(hangup_handler_push)", "channel(hangup_handler_pop)"):
        # Each change is announced as Asterisk does (HangupHandlerPush/Pop, class dialplan), the handler
        # written out as context,exten,priority.
        try:
            pushed = _place(channel, value) if value.strip() else None
        except ValueError as exc:
            log.warning("%s: %s", name, exc, extra={"channel": channel.name})  # Asterisk warns and goes on
            return 0
        if name.lower().endswith("pop)") and channel.hangup_handlers:
            popped = channel.hangup_handlers.pop()
            thread.pbx.channel_event("HangupHandlerPop", channel, _handler(popped), privilege="dialplan,all")
        if pushed is not None:
            channel.hangup_handlers.append(pushed)
            thread.pbx.channel_event("HangupHandlerPush", channel, _handler(pushed), privilege="dialplan,all")
    elif "(" in name:
        channel.variables[name] = value
    elif name:
        thread.pbx.set_variable(channel, name, value)
    return 0


def _handler(place: tuple[str, str, int]) -> tuple[str, str]:
    """The `Handler` header of HangupHandlerPush/Pop/Run: the handler as context,exten,priority."""
    return "Handler", ",".join(map(str, place))


def _place(channel: SimChannel, target: str) -> tuple[str, str, int]:
    """[[context,]exten,]priority, the rest taken from where the channel is, as Asterisk reads it."""
    parts = [part.strip() for part in target.split(",")]
    if not 1 <= len(parts) <= 3 or not parts[-1].isdigit():
        raise ValueError(f"expected [[context,]exten,]priority, got {target!r}")
    context = parts[0] if len(parts) == 3 else channel.context
    exten = parts[-2] if len(parts) >= 2 else channel.exten
    return context, exten, int(parts[-1])


async def app_channel_redirect(thread: PbxThread, data: str) -> int:
    """ChannelRedirect(channel,[[context,]exten,]priority): send another channel elsewhere in the dialplan,
    as an AMI Redirect would; CHANNELREDIRECT_STATUS says whether it found the channel."""
    pbx = thread.pbx
    name, _, target = data.partition(",")
    other = pbx.find_channel(name.strip()) if name.strip() else None
    if other is None or other.dead:
        pbx.set_variable(thread.channel, "CHANNELREDIRECT_STATUS", "NOCHANNEL")
        return 0
    pbx.set_goto(other, *_place(other, target))
    pbx.apply_goto(other)
    pbx.set_variable(thread.channel, "CHANNELREDIRECT_STATUS", "SUCCESS")
    return 0


async def app_soft_hangup(thread: PbxThread, data: str) -> int:
    """SoftHangup(Technology/Resource[,options]): hang up the channel of that name; with option a, every
    channel of that device (the name without its -suffix), as app_softhangup.c compares them."""
    pbx = thread.pbx
    name, _, options = data.partition(",")
    name = name.strip().lower()
    for channel in list(pbx.channels.values()):
        candidate = channel.name.lower()
        if "a" in options:
            candidate = candidate.rpartition("-")[0] or candidate
        if name and candidate == name and not channel.dead:
            pbx.request_hangup(channel, 16, event="SoftHangupRequest")
            if "a" not in options:
                break
    return 0


async def app_return(thread: PbxThread, data: str) -> int:
    """Return() outside a hangup handler or Gosub: Asterisk finds an empty stack and ends the dialplan."""
    log.warning("Return() without Gosub", extra={"channel": thread.channel.name})
    return -1


async def app_playback(thread: PbxThread, data: str) -> int:
    return -1 if await until_interrupted(thread.channel, SHORT_MEDIA) else 0


async def app_dial(thread: PbxThread, data: str) -> int:
    """Dial(PJSIP/agent3,20,tTg) or Dial(PJSIP/+441632960101@carrier,60,T): ring, then bridge; options
    t/T (transfer codes for the called party / the caller) and g (go on when the called party hangs up)."""
    pbx, caller = thread.pbx, thread.channel
    target, timeout, options = (data.split(",") + ["", ""])[:3]
    if caller.interrupted.is_set():
        return -1
    tech, _, resource = target.partition("/")
    number, at, endpoint = resource.partition("@")
    if not at:
        number, endpoint = "", resource
    if tech.upper() != "PJSIP" or not pbx.endpoint_exists(endpoint):
        pbx.set_variable(caller, "DIALSTATUS", "CHANUNAVAIL")
        return 0
    callee = _new_leg(pbx, caller, endpoint, number)
    callee.may_transfer, caller.may_transfer = "t" in options, "T" in options
    pbx.emit("DialBegin", [*caller.headers(), *callee.headers("Dest"), ("DialString", resource)])
    caller.connected_num, caller.connected_name = callee.caller_num or "<unknown>", callee.caller_name or "<unknown>"
    pbx.channel_event("NewConnectedLine", caller)
    if caller.local is not None:
        caller.local.mirror_connected_line()
    pbx.start_ringing(callee)
    pbx.device_state(callee.device, "RINGING")
    call = pbx.calls.get(caller.uniqueid)
    if call is not None:
        call.t_ringing = time.perf_counter()
    if caller.local is not None:
        caller.local.mirror_ringing(callee)
    pbx.emit("DialState", [*caller.headers(), *callee.headers("Dest"), ("DialStatus", "RINGING")])
    outcome = await first({"answer": callee.answered.wait(), "caller": caller.interrupted.wait(),
                           "callee": callee.interrupted.wait()}, float(timeout) if timeout.strip() else None)
    if outcome != "answer":
        status = {"caller": "CANCEL", "callee": "BUSY", None: "NOANSWER"}[outcome]
        pbx.emit("DialEnd", [*caller.headers(), *callee.headers("Dest"), ("DialStatus", status)])
        pbx.destroy(callee, callee.hangup_cause or {"CANCEL": 0, "BUSY": 17, "NOANSWER": 19}[status])
        pbx.set_variable(caller, "DIALSTATUS", status)
        return -1 if status == "CANCEL" else 0
    pbx.set_state(callee, UP)
    callee.exten = ""
    pbx.set_variable(caller, "DIALSTATUS", "ANSWER")
    pbx.emit("DialEnd", [*caller.headers(), *callee.headers("Dest"), ("DialStatus", "ANSWER")])
    pbx.stop_moh(caller)
    if caller.state != UP:  # Dial() answers the channel that dialled (a Local ;2, an Originate leg)
        pbx.set_state(caller, UP)
        if caller.local is not None:
            caller.local.mirror_answer()
    pbx.device_state(callee.device, "INUSE")
    bridge = pbx.new_bridge()
    if caller.local is not None:
        caller.local.mirror_dial_end()
    pbx.channel_event("Newexten", callee, ("Extension", callee.exten), ("Application", "AppDial"),
                      ("AppData", "(Outgoing Line)"), privilege="dialplan,all")
    bridge.enter(callee)
    bridge.enter(caller)
    await talk(pbx, caller, callee, bridge)
    return 0 if "g" in options and not caller.interrupted.is_set() else -1


def _new_leg(pbx: SimulatedPbx, caller: SimChannel, endpoint: str, number: str) -> SimChannel:
    """The dialled leg: a desk phone (context from-agents) or the carrier trunk calling `number`."""
    phone = endpoint != "carrier"
    callee = pbx.new_channel(f"PJSIP/{endpoint}", endpoint if phone else number, endpoint if phone else "",
                             "from-agents" if phone else "from-carrier", "s", state=DOWN, linkedid=caller.linkedid)
    callee.owned = True
    callee.exten = caller.exten
    callee.application, callee.application_data = "AppDial", "(Outgoing Line)"
    pbx.channel_event("Newexten", callee, ("Extension", callee.exten), ("Application", "AppDial"),
                      ("AppData", "(Outgoing Line)"), privilege="dialplan,all")
    callee.connected_num, callee.connected_name = caller.caller_num or "<unknown>", caller.caller_name or "<unknown>"
    pbx.channel_event("NewConnectedLine", callee)
    return callee


async def talk(pbx: SimulatedPbx, channel: SimChannel, peer: SimChannel, bridge: SimBridge,
               after: tuple[str, str, int] | None = None) -> None:
    """Stay in the bridge until `channel` is out of it (it hung up or was redirected, or the bridge
    dissolved because the other side did), then hang `peer` up if it is still ours: a leg that
    moved to another bridge (an attended transfer) or got its own dialplan (a Redirect) is not.
    With `after` (Bridge()'s F option) a peer still up is not hung up once `channel` hung up: it
    carries on at that place in the dialplan."""
    await channel.left_bridge.wait()
    if not peer.destroyed and not peer.has_pbx and peer.owned and peer.bridge in (None, bridge):
        if peer.bridge is bridge:
            bridge.leave(peer)
        if after is not None and channel.dead and not peer.dead:
            pbx.start_pbx(peer, *after)
        else:
            pbx.destroy(peer, peer.hangup_cause or 16)
    elif not peer.has_pbx:
        peer.owned = False  # whoever holds it now hangs it up
    if not bridge.destroyed and not bridge.channels:
        bridge.destroy()


async def app_bridge(thread: PbxThread, data: str) -> int:
    """Bridge(channel[,options]): take a channel out of whatever it runs and join it; when this channel
    leaves, the other is hung up, unless option F(context^exten^priority) sends it there once this
    channel (the bridger) hung up. A bare F (next priority of the current extension) is not modelled."""
    pbx, channel = thread.pbx, thread.channel
    wanted, _, options = data.partition(",")
    after = _bridge_go_on(options)
    target = pbx.find_channel(wanted.strip())
    if target is None or target is channel or target.dead:
        pbx.set_variable(channel, "BRIDGERESULT", "NONEXISTENT")
        return 0
    pbx.take(target)
    if channel.state != UP:
        pbx.set_state(channel, UP)
    bridge = pbx.new_bridge()
    bridge.enter(channel)
    bridge.enter(target)
    pbx.set_variable(channel, "BRIDGERESULT", "SUCCESS")
    await talk(pbx, channel, target, bridge, after)
    return 0 if not channel.dead else -1


def _bridge_go_on(options: str) -> tuple[str, str, int] | None:
    """F(context^exten^priority) in Bridge()'s options, as app_bridge parses it; None without one."""
    match = re.search(r"F\(([^)]*)\)", options)
    if match is None:
        return None
    parts = match.group(1).split("^")
    if len(parts) != 3 or not parts[2].strip().isdigit():
        raise ValueError(f"Bridge() option F({match.group(1)}): expected context^exten^priority")
    return parts[0].strip(), parts[1].strip(), int(parts[2])


async def app_chanspy(thread: PbxThread, data: str) -> int:
    """ChanSpy(prefix,options): listen to the first channel whose name starts with prefix (options
    q quiet, w whisper, B barge, E leave when it hangs up); without E, look again afterwards."""
    pbx, spyer = thread.pbx, thread.channel
    prefix, _, options = data.partition(",")
    while not spyer.interrupted.is_set():
        spyee = next((c for c in pbx.channels.values() if c is not spyer and c.name.startswith(prefix)
                      and not c.dead and c.state == UP), None)
        if spyee is None:
            await until_interrupted(spyer, SPY_SCAN)
            continue
        pbx.spies[spyer.name] = (spyee.name, options)
        pbx.emit("ChanSpyStart", [*spyer.headers("Spyer"), *spyee.headers("Spyee")])
        await first({"spyer": spyer.interrupted.wait(), "spyee": spyee.hung_up.wait()}, None)
        pbx.emit("ChanSpyStop", [*spyer.headers("Spyer"), *spyee.headers("Spyee")])
        pbx.spies.pop(spyer.name, None)
        if "E" in options:
            break
    return -1 if spyer.dead else 0


APPLICATIONS: dict[str, App] = {
    "noop": app_noop,
    "answer": app_answer,
    "hangup": app_hangup,
    "gotoif": app_gotoif,
    "goto": app_goto,
    "agi": app_agi,
    "wait": app_wait,
    "startmusiconhold": app_start_moh,
    "stopmusiconhold": app_stop_moh,
    "musiconhold": app_music_on_hold,
    "queue": app_queue,
    "set": app_set,
    "playback": app_playback,
    "dial": app_dial,
    "bridge": app_bridge,
    "chanspy": app_chanspy,
    "channelredirect": app_channel_redirect,
    "softhangup": app_soft_hangup,
    "return": app_return,
}


async def first(waits: dict, timeout: float | None) -> str | None:
    """Which of the named waits finishes first, or None after `timeout` seconds."""
    tasks = {asyncio.ensure_future(coro): name for name, coro in waits.items()}
    try:
        done, _ = await asyncio.wait(tasks, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
    for task, name in tasks.items():  # in the order given: a tie goes to the first named
        if task in done:
            return name
    return None
