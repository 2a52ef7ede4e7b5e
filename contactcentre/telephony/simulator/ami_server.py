"""The simulator's AMI server: what a client sees on TCP 5038 of Asterisk 22.

Banner alone on the first line, then `Response:` and `Event:` messages ended
by an empty line. A failed login gets `Response: Error` and the socket is
closed, as ../shared/ami-captures/login-failure.ami shows.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from contactcentre.telephony.ami.protocol import AmiMessage, AmiParser, encode_message

log = logging.getLogger(__name__)

BANNER = b"Asterisk Call Manager/11.0.0\r\n"

ActionHandler = Callable[["AmiSession", AmiMessage], Awaitable[None]]


def unknown_action_message(name: str) -> str:
    return f"Invalid/unknown command: {name}. Use Action: ListCommands to show available commands."


class AmiSession(asyncio.Protocol):
    def __init__(self, server: AmiServer):
        self.server = server
        self.parser = AmiParser(expect_banner=False)
        self.transport: asyncio.Transport | None = None
        self.username = ""
        self.logged_in = False
        self.events_on = True
        self.login_tv = ""  # when it logged in, as the security events write it

    def connection_made(self, transport: asyncio.Transport) -> None:
        self.transport = transport
        if self.server.paused:  # the PBX's manager is away: the connection is dropped at once
            transport.close()
            return
        transport.write(BANNER)
        self.server.sessions.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.server.sessions.discard(self)

    def data_received(self, data: bytes) -> None:
        for message in self.parser.feed(data):
            if message.kind != "action":
                continue
            self.server.spawn(self.server.handle_action(self, message))

    def send(self, first: tuple[str, str], headers: list[tuple[str, str]]) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(encode_message(first, headers))

    def respond(self, action: AmiMessage, status: str, headers: list[tuple[str, str]] = ()) -> None:
        reply: list[tuple[str, str]] = []
        if action.get("ActionID") is not None:
            reply.append(("ActionID", action["ActionID"]))
        reply.extend(headers)
        self.send(("Response", status), reply)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


class AmiServer:
    """Serves Login/Logoff itself; every other action goes to the handlers it is given."""

    def __init__(self, username: str, secret: str, handlers: dict[str, ActionHandler]):
        self.username = username
        self.secret = secret
        self.handlers = {name.lower(): handler for name, handler in handlers.items()}
        self.sessions: set[AmiSession] = set()
        self.started_at = datetime.now(UTC)
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task] = set()
        self.paused = False  # when True, accepted connections are dropped (a PBX that went away)
        self.frozen = False  # when True, actions get no answer at all (a PBX that hangs)

    @property
    def port(self) -> int:
        assert self._server is not None
        return self._server.sockets[0].getsockname()[1]

    async def start(self, host: str, port: int) -> None:
        self._server = await asyncio.get_running_loop().create_server(lambda: AmiSession(self), host, port)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for session in list(self.sessions):
            session.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    def spawn(self, coro: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def broadcast(self, name: str, headers: list[tuple[str, str]]) -> None:
        encoded = None
        for session in self.sessions:
            if session.logged_in and session.events_on and session.transport and not session.transport.is_closing():
                if encoded is None:
                    encoded = encode_message(("Event", name), headers)
                session.transport.write(encoded)

    async def handle_action(self, session: AmiSession, action: AmiMessage) -> None:
        if self.frozen:
            return
        name = action.get("Action", "")
        low = name.lower()
        if low == "login":
            self._login(session, action)
            return
        if not session.logged_in:
            session.respond(action, "Error", [("Message", "Permission denied")])
            return
        if low == "logoff":
            session.respond(action, "Goodbye", [("Message", "Thanks for all the fish.")])
            session.close()
            return
        if low == "ping":
            now = datetime.now(UTC).timestamp()
            session.respond(action, "Success", [("Ping", "Pong"), ("Timestamp", f"{now:.6f}")])
            return
        handler = self.handlers.get(low)
        if handler is None:
            session.respond(action, "Error", [("Message", unknown_action_message(name))])
            self._request_bad_format(session, name)
            return
        await handler(session, action)

    def _login(self, session: AmiSession, action: AmiMessage) -> None:
        if action.get("Username") != self.username or action.get("Secret") != self.secret:
            session.respond(action, "Error", [("Message", "Authentication failed")])
            self._security_event("InvalidPassword", session, action.get("Username", ""))
            session.close()
            return
        session.logged_in = True
        session.username = self.username
        session.events_on = (action.get("Events") or "on").lower() not in ("off", "no")
        session.respond(action, "Success", [("Message", "Authentication accepted")])
        session.login_tv = _event_tv()
        self._security_event("SuccessfulAuth", session, self.username)
        uptime = int((datetime.now(UTC) - self.started_at).total_seconds())
        session.send(("Event", "FullyBooted"), [("Privilege", "system,all"), ("Uptime", str(uptime)),
                                                 ("LastReload", str(uptime)), ("Status", "Fully Booted")])

    def _request_bad_format(self, session: AmiSession, name: str) -> None:
        """The security event Asterisk raises after an unknown action (resync.ami, after FlyToTheMoon)."""
        local, remote = _addresses(session)
        self.broadcast("RequestBadFormat", [
            ("Privilege", "security,all"), ("EventTV", _event_tv()), ("Severity", "Error"), ("Service", "AMI"),
            ("EventVersion", "1"), ("SessionID", f"0x{id(session):x}"), ("LocalAddress", local),
            ("RemoteAddress", remote), ("RequestType", f"Action: {name}"), ("SessionTV", session.login_tv),
            ("AccountID", session.username)])

    def _security_event(self, name: str, session: AmiSession, account: str) -> None:
        local, remote = _addresses(session)
        now = _event_tv()
        headers = [("Privilege", "security,all"), ("EventTV", now),
                   ("Severity", "Informational" if name == "SuccessfulAuth" else "Error"),
                   ("Service", "AMI"), ("EventVersion", "1" if name == "SuccessfulAuth" else "2"),
                   ("AccountID", account), ("SessionID", f"0x{id(session):x}"),
                   ("LocalAddress", local), ("RemoteAddress", remote)]
        if name == "SuccessfulAuth":
            headers += [("UsingPassword", "0"), ("SessionTV", now)]
        else:
            headers += [("SessionTV", "1970-01-01T00:00:00.000+0000")]
        self.broadcast(name, headers)


def _event_tv() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+0000"


def _addresses(session: AmiSession) -> tuple[str, str]:
    local = session.transport.get_extra_info("sockname") if session.transport else ("127.0.0.1", 0)
    remote = session.transport.get_extra_info("peername") if session.transport else ("127.0.0.1", 0)
    return f"IPV4/TCP/{local[0]}/{local[1]}", f"IPV4/TCP/{remote[0]}/{remote[1]}"
