"""socket.io: authentication on connect, one room per agent, the console's events.

Every event handler checks the caller's role again; the router decides what is
allowed in the agent's current state, and its refusals go back in the ack as
`{"ok": false, "error": ..., "id": ...}`. A number consent or do-not-call rules
out comes back as `{"ok": false, "id": "dial-refused", "reason": ...}`.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import Counter

import socketio

from contactcentre.crm.accounts import get_agent
from contactcentre.crm.audit import Access
from contactcentre.crm.callbacks import CallbackStore
from contactcentre.crm.consent import DialRefused
from contactcentre.crm.fields import FieldError
from contactcentre.crm.models import MAX_ID, Role
from contactcentre.crm.phones import InvalidPhoneNumber
from contactcentre.routing.models import AgentState, LiveAgent, LiveCall
from contactcentre.routing.outbound import OutboundDialler
from contactcentre.routing.service import QueueRouter, RoutingError
from contactcentre.telephony.ami.client import AmiError, AmiNotConnected
from contactcentre.telephony.commands import PbxCommands
from contactcentre.web.auth import SessionSigner
from contactcentre.web.api import BadRequest
from contactcentre.web.callback_routes import read_callback_request, schedule

log = logging.getLogger(__name__)

AGENT_ROLES = {Role.AGENT}


def agent_room(agent_id: int) -> str:
    return f"agent:{agent_id}"


class SocketNotifier:
    """The router's Notifier: pushes to the agent's room. Only web/ knows about rooms."""

    def __init__(self, sio: socketio.AsyncServer):
        self._sio = sio
        self._tasks: set[asyncio.Task] = set()

    def _emit(self, event: str, data: dict, agent_id: int, callback=None) -> None:
        emit = self._sio.emit(event, data, room=agent_room(agent_id), callback=callback)
        task = asyncio.get_running_loop().create_task(emit)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def agent_state(self, agent: LiveAgent) -> None:
        self._emit("agent_state", agent.as_dict(), agent.agent_id)

    def call_offered(self, agent: LiveAgent, call: LiveCall) -> None:
        # The console acknowledges the pop once it is on screen; the inbound
        # flow (and the outbound dialler) waits for that, briefly, before it
        # rings the agent's phone.
        attempt = call.outbound
        outbound = {"number": attempt.number, "purpose": attempt.purpose, "callback_id": attempt.callback_id,
                    "note": attempt.note} if attempt else None
        self._emit("screen_pop", {"call_id": call.call_id, "queue": call.queue, "offered_at": call.offered_at,
                                  "direction": call.direction.value, "outbound": outbound, **call.pop.as_dict()},
                   agent.agent_id, callback=lambda *_: call.pop_shown.set())

    def call_state(self, agent: LiveAgent, call_id: str, state: str, reason: str = "") -> None:
        self._emit("call_state", {"call_id": call_id, "state": state, "reason": reason}, agent.agent_id)

    async def drain(self) -> None:
        if self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)


class ConsoleEvents:
    """The agent console's socket.io events."""

    def __init__(self, sio: socketio.AsyncServer, signer: SessionSigner, sessions, router: QueueRouter,
                 pbx: PbxCommands, tracker, outbound: OutboundDialler, callbacks: CallbackStore, region: str):
        self.sio = sio
        self.signer = signer
        self.sessions = sessions
        self.router = router
        self.pbx = pbx
        self.tracker = tracker
        self.outbound = outbound
        self.callbacks = callbacks
        self.region = region
        self.connections: Counter[int] = Counter()
        sio.on("connect", self.connect)
        sio.on("disconnect", self.disconnect)
        for name in ("ready", "pause", "answer", "hangup", "disposition", "dial", "schedule_callback"):
            sio.on(name, self._guarded(getattr(self, f"on_{name}")))

    async def connect(self, sid: str, environ: dict, auth: object = None) -> None:
        identity = self.signer.from_cookie_header(environ.get("HTTP_COOKIE"))
        if identity is None:
            raise socketio.exceptions.ConnectionRefusedError("not logged in")
        if identity.role not in AGENT_ROLES:
            raise socketio.exceptions.ConnectionRefusedError("the console is for agents")
        agent = await get_agent(self.sessions, identity.user_id)
        if agent is None or not agent.device:
            raise socketio.exceptions.ConnectionRefusedError("no agent with a phone device for this login")
        await self.sio.save_session(sid, {"agent_id": agent.id, "role": identity.role.value})
        await self.sio.enter_room(sid, agent_room(agent.id))
        self.connections[agent.id] += 1
        already = agent.id in self.router.agents and self.router.agents[agent.id].status is not AgentState.LOGGED_OUT
        live = self.router.agent_login(agent.id, agent.username, agent.display_name, agent.device)
        if already:  # a second tab: the login itself told the room nothing, so tell this one
            await self.sio.emit("agent_state", live.as_dict(), to=sid)
        log.info("agent console connected", extra={"agent_id": agent.id})

    async def disconnect(self, sid: str, reason: object = None) -> None:
        session = await self.sio.get_session(sid)
        agent_id = session.get("agent_id") if session else None
        if agent_id is None:
            return
        self.connections[agent_id] -= 1
        if self.connections[agent_id] <= 0:
            del self.connections[agent_id]
            self.router.agent_logout(agent_id)

    def _guarded(self, handler):
        async def guarded(sid: str, data: object = None) -> dict:
            session = await self.sio.get_session(sid)
            if not session or Role(session["role"]) not in AGENT_ROLES:
                return {"ok": False, "error": "not allowed", "id": "forbidden"}
            if data is not None and not isinstance(data, dict):
                return {"ok": False, "error": "expected an object", "id": "bad-request"}
            try:
                result = await handler(session["agent_id"], data or {})
            except RoutingError as exc:
                return {"ok": False, "error": str(exc), "id": exc.error_id}
            except _BadRequest as exc:
                return {"ok": False, "error": str(exc), "id": "bad-request"}
            except FieldError as exc:
                return {"ok": False, "error": f"{exc.field}: {exc.problem}", "id": "bad-request", "field": exc.field}
            except BadRequest as exc:  # the API's body reader, shared with the REST route
                return {"ok": False, **json.loads(exc.text)}
            except DialRefused as exc:
                log.info("dial refused: %s", exc.reason, extra={"agent_id": session["agent_id"]})
                return {"ok": False, "error": str(exc), "id": exc.error_id, "reason": exc.reason}
            except (AmiError, AmiNotConnected, TimeoutError) as exc:
                log.warning("PBX refused a console action: %s", exc, extra={"agent_id": session["agent_id"]})
                return {"ok": False, "error": f"the PBX did not do it: {exc}", "id": "pbx-error"}
            return {"ok": True, **(result or {})}
        return guarded

    async def on_ready(self, agent_id: int, data: dict) -> dict:
        return {"state": self.router.agent_ready(agent_id).state}

    async def on_pause(self, agent_id: int, data: dict) -> dict:
        return {"state": self.router.agent_pause(agent_id, _text(data, "reason", 64, required=False)).state}

    async def on_answer(self, agent_id: int, data: dict) -> None:
        self.router.call_of(agent_id, _text(data, "call_id", 64))
        await self.pbx.answer(self.router.agents[agent_id].device)

    async def on_hangup(self, agent_id: int, data: dict) -> None:
        call_id = _text(data, "call_id", 64)
        self.router.call_of(agent_id, call_id)
        agent = self.router.agents[agent_id]
        call = self.tracker.calls.get(call_id)
        channel = call.channel_on(agent.device) if call else None
        if channel is None:
            raise RoutingError("the call has no line on your phone to hang up", 409, "no-channel")
        await self.pbx.hangup(channel.name)

    async def on_disposition(self, agent_id: int, data: dict) -> None:
        await self.router.submit_disposition(agent_id, _text(data, "call_id", 64), _text(data, "disposition", 64),
                                             _text(data, "notes", 10_000, required=False))

    async def on_dial(self, agent_id: int, data: dict) -> dict:
        """Click to dial: `number` as typed (or picked from the pop), `customer_id` when it came from one."""
        try:
            call = await self.outbound.agent_call(agent_id, _text(data, "number", 32), _customer_id(data))
        except InvalidPhoneNumber as exc:
            raise _BadRequest(f"number: {exc}") from None
        return {"call_id": call.call_id, "number": call.outbound.number}

    async def on_schedule_callback(self, agent_id: int, data: dict) -> dict:
        wanted = read_callback_request(data, self.region)
        return {"callback": await schedule(self.callbacks, wanted, Access(agent_id, "console: schedule_callback"))}


class _BadRequest(ValueError):
    pass


def _customer_id(data: dict) -> int | None:
    value = data.get("customer_id")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= MAX_ID:
        raise _BadRequest("customer_id: expected a customer id (a whole number)")
    return value


def _text(data: dict, key: str, limit: int, required: bool = True) -> str:
    value = data.get(key, "")
    if not isinstance(value, str):
        raise _BadRequest(f"{key}: expected a string, got {type(value).__name__}")
    if required and not value:
        raise _BadRequest(f"{key}: required")
    if len(value) > limit:
        raise _BadRequest(f"{key}: at most {limit} characters")
    return value
