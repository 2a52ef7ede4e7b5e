"""AMI client living in asyncio: an asyncio transport feeds AmiParser.

asterisk-ami's own AMIClient reads on a daemon thread with blocking 1 KiB
reads; bench/ami_ingest.py measures it against this transport and
docs/PERFORMANCE.md keeps the figures behind the choice. The package still
writes our actions (see protocol.encode_action).

Events are delivered on the event loop to the handlers given to `add_handler`.
Actions are awaitable, matched to their response by ActionID, with a timeout.
The link reconnects with exponential back-off and jitter; after each login the
`on_connected` callbacks run (the tracker resyncs there).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from enum import Enum
from typing import TYPE_CHECKING

from contactcentre.config import AmiSettings
from contactcentre.telephony.ami.events import KNOWN_EVENTS
from contactcentre.telephony.ami.protocol import AmiMessage, AmiParser, EventFilter, encode_action

if TYPE_CHECKING:
    from contactcentre.telephony.recorder import FlightRecorder

log = logging.getLogger(__name__)

EventHandler = Callable[[AmiMessage], None]
MAX_KINDS_LOGGED = 256  # names come from the PBX: a broken one cannot fill the log with new "kinds"


class AmiError(Exception):
    """Asterisk answered `Response: Error`; the message is Asterisk's own."""

    def __init__(self, action: str, message: str):
        super().__init__(f"{action}: {message}")
        self.action = action
        self.message = message


class AmiNotConnected(ConnectionError):
    pass


class LinkStatus(str, Enum):
    STARTING = "starting"
    CONNECTED = "connected"
    CONNECTING = "connecting"
    LOGIN_FAILED = "login failed"
    NOT_ANSWERING = "not answering"
    UNREACHABLE = "unreachable"
    STOPPED = "stopped"


class _AmiProtocol(asyncio.Protocol):
    def __init__(self, client: AmiClient):
        self._client = client
        self._parser = AmiParser(on_new_kind=client.note_new_kind)
        self._loop = asyncio.get_running_loop()
        self.closed = self._loop.create_future()

    def data_received(self, data: bytes) -> None:
        client = self._client
        client.last_received = self._loop.time()
        if client.recorder is not None:
            client.recorder.write(data)
        if client._pending or client._awaited:
            # While an action waits, every message may be its answer (list items are events): parse all.
            for message in self._parser.feed(data):
                client._dispatch(message)
            return
        # Nothing waits, so nothing read here can answer an action (one sent by a handler meanwhile is
        # answered in a later read): events go straight to the handlers.
        hand_on, dispatch = client._hand_on, client._dispatch
        for message in self._parser.feed(data, client._wanted):
            if message.kind == "event":
                hand_on(message)
            else:
                dispatch(message)

    @property
    def parser(self) -> AmiParser:
        return self._parser

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(exc)


class _Pending:
    __slots__ = ("name", "future", "items", "is_list", "on_complete")

    def __init__(self, name: str, future: asyncio.Future, is_list: bool,
                 on_complete: Callable[[list[AmiMessage]], None] | None = None):
        self.name = name
        self.future = future
        self.items: list[AmiMessage] = []
        self.is_list = is_list
        self.on_complete = on_complete


class AmiClient:
    def __init__(self, settings: AmiSettings):
        self.settings = settings
        self.status = LinkStatus.STARTING
        self.last_error = ""
        self.banner = ""
        self.events_received = 0
        self.last_received = 0.0  # loop time of the last bytes from the PBX
        self.recorder: FlightRecorder | None = None  # the flight recorder, when one is switched on
        self._handlers: list[tuple[EventHandler, frozenset[str] | None]] = []  # handler, the events it wants
        self._handlers_for: dict[str, tuple[EventHandler, ...]] = {}  # event name -> its handlers, as asked
        self._wanted: EventFilter | None = None  # the events some handler wants; None: all
        self._wanted_names: set[str] = set()
        self._wants_all = False
        self._on_connected: list[Callable[[], Awaitable[None]]] = []
        self._transport: asyncio.Transport | None = None
        self._protocol: _AmiProtocol | None = None
        # What the readers of earlier connections counted: event names skipped, messages damaged.
        self._earlier_skipped: Counter[bytes] = Counter()
        self._earlier_damaged: Counter[str] = Counter()
        # Events of no known kind parsed all the same (an action was waiting) and wanted by no handler.
        self._unwanted: Counter[str] = Counter()
        self._kinds_logged: set[str] = set()  # kinds of no model whose first event went to the log
        self._pending: dict[str, _Pending] = {}
        self._awaited: dict[str, tuple[str, asyncio.Future]] = {}  # ActionID -> (event name, its future)
        self._ids = itertools.count(1)
        self._prefix = f"cc-{random.getrandbits(32):08x}-"
        self._runner: asyncio.Task | None = None
        self._connected = asyncio.Event()

    # -- wiring ---------------------------------------------------------------

    def add_handler(self, handler: EventHandler, events: Iterable[str] | None = None) -> None:
        """Call `handler` on the loop for each event; with `events`, only for those names.

        When every handler names its events, the others are never parsed: most
        of what Asterisk sends is VarSet, Newexten and RTCP that nobody here
        reads. Those we have no model of are counted (`skipped_events`).
        """
        names = None if events is None else frozenset(events)
        self._handlers.append((handler, names))
        self._handlers_for.clear()
        if names is None:
            self._wanted = None
            self._wants_all = True
        elif not self._wants_all:
            self._wanted_names |= names
            self._wanted = EventFilter(self._wanted_names, ignore=KNOWN_EVENTS)

    @property
    def skipped_events(self) -> Counter[str]:
        """Events of kinds we have no model of, dropped unparsed as no handler wanted them, by name
        (since start, across reconnects)."""
        skipped = self._earlier_skipped + (self._protocol.parser.skipped if self._protocol else Counter())
        return self._unwanted + Counter({name.decode(errors="replace"): n for name, n in skipped.items()})

    @property
    def damaged_messages(self) -> dict[str, int]:
        """Messages the reader had to cut (over MAX_MESSAGE_BYTES) or could not decode as UTF-8 (since start)."""
        parser = self._protocol.parser if self._protocol else None
        return {"oversized": self._earlier_damaged["oversized"] + (parser.oversized if parser else 0),
                "undecodable": self._earlier_damaged["undecodable"] + (parser.undecodable if parser else 0)}

    def note_new_kind(self, name: str, text: str) -> None:
        """The first event of a kind we have no model of is kept, in the log, whole; the rest are counted."""
        if name in self._kinds_logged or len(self._kinds_logged) >= MAX_KINDS_LOGGED:
            return
        self._kinds_logged.add(name)
        log.info("AMI event of a kind we have no model of: %s (counted in /health from now on); the first: %r",
                 name, text[:2000])

    def on_connected(self, callback: Callable[[], Awaitable[None]]) -> None:
        self._on_connected.append(callback)

    async def start(self) -> None:
        """Keep the link up in the background; return once the first login is tried."""
        first_try = asyncio.get_running_loop().create_future()
        self._runner = asyncio.create_task(self._run(first_try), name="ami-link")
        await first_try

    async def close(self) -> None:
        self.status = LinkStatus.STOPPED
        if self._runner:
            self._runner.cancel()
            try:
                await self._runner
            except asyncio.CancelledError:
                pass
        self._drop_link(AmiNotConnected("AMI client closed"))

    async def wait_connected(self, timeout: float) -> None:
        async with asyncio.timeout(timeout):
            await self._connected.wait()

    # -- actions --------------------------------------------------------------

    async def send(self, name: str, keys: Mapping[str, object] | None = None,
                   variables: Mapping[str, object] | None = None,
                   timeout: float | None = None) -> AmiMessage:
        """Send one action and return its response; raise AmiError on `Response: Error`."""
        pending = await self._submit(name, keys, variables, timeout, is_list=False)
        return pending.future.result()

    async def send_list(self, name: str, keys: Mapping[str, object] | None = None,
                        timeout: float | None = None,
                        on_complete: Callable[[list[AmiMessage]], None] | None = None) -> list[AmiMessage]:
        """Send a list action (CoreShowChannels, Status, ...) and return its item events.

        `on_complete` runs with the items the moment the Complete event is read,
        before any later event is handed on: a resync applied there cannot be
        overtaken by an event that happened after the PBX's snapshot.
        """
        pending = await self._submit(name, keys, None, timeout, is_list=True, on_complete=on_complete)
        return pending.items

    async def send_and_wait_event(self, name: str, keys: Mapping[str, object] | None = None,
                                  event_name: str = "", variables: Mapping[str, object] | None = None,
                                  timeout: float | None = None, event_timeout: float | None = None) -> AmiMessage:
        """Send an action whose outcome comes later as an event carrying its ActionID (an async
        Originate's `OriginateResponse`) and return that event; raise AmiError on `Response: Error`.

        The event is awaited from before the action is written, so it counts even if it overtakes the
        response; it is still handed to the event handlers too. `event_timeout` (default: the action
        timeout) bounds the wait for the event once the response came.
        """
        action_id = self._next_action_id()
        waiter = asyncio.get_running_loop().create_future()
        self._awaited[action_id] = (event_name.lower(), waiter)
        try:
            await self._submit(name, keys, variables, timeout, is_list=False, action_id=action_id)
            limit = event_timeout or self.settings.action_timeout
            try:
                async with asyncio.timeout(limit):
                    return await waiter
            except TimeoutError:
                raise TimeoutError(f"{name}: no {event_name} from the PBX within {limit:g} s") from None
        finally:
            self._awaited.pop(action_id, None)
            if waiter.done() and not waiter.cancelled():
                waiter.exception()  # a link dropped while the action was pending: already raised there

    def _next_action_id(self) -> str:
        return f"{self._prefix}{next(self._ids)}"

    async def _submit(self, name, keys, variables, timeout, is_list, on_complete=None,
                      action_id: str | None = None) -> _Pending:
        if self._transport is None or self._transport.is_closing():
            raise AmiNotConnected(f"{name}: the AMI link is down ({self.status.value})")
        action_id = action_id or self._next_action_id()
        pending = _Pending(name, asyncio.get_running_loop().create_future(), is_list, on_complete)
        self._pending[action_id] = pending
        self._transport.write(encode_action(name, action_id, keys, variables))
        try:
            async with asyncio.timeout(timeout or self.settings.action_timeout):
                await pending.future
        except TimeoutError:
            raise TimeoutError(f"{name}: no response from the PBX within "
                               f"{timeout or self.settings.action_timeout:g} s") from None
        finally:
            self._pending.pop(action_id, None)
        return pending

    # -- reading --------------------------------------------------------------

    def _dispatch(self, message: AmiMessage) -> None:
        if message.kind == "event" and not (self._pending or self._awaited):
            self._hand_on(message)  # the common case: nothing of ours waits for an answer
            return
        if message.kind == "banner":
            self.banner = message.name
            return
        if self._pending or self._awaited:  # only then can a message answer one of our actions
            action_id = message.get("ActionID")
            pending = self._pending.get(action_id) if action_id else None
            if pending is not None and self._settle(pending, message):
                return
            awaited = self._awaited.get(action_id) if action_id and message.kind == "event" else None
            if awaited is not None and awaited[0] == message.name.lower() and not awaited[1].done():
                awaited[1].set_result(message)
        if message.kind == "event":
            self._hand_on(message)
        elif message.kind == "unknown":
            log.debug("AMI message of unknown kind dropped: %r", message.headers[:3])

    def _hand_on(self, message: AmiMessage) -> None:
        self.events_received += 1
        name = message.name
        handlers = self._handlers_for.get(name)
        if handlers is None:
            handlers = self._handlers_of(name)
        if not handlers and name not in KNOWN_EVENTS:
            self._unwanted[name] += 1  # counted as the reader counts those it skips unparsed
            if self._unwanted[name] == 1:
                self.note_new_kind(name, message.text)
        for handler in handlers:
            try:
                handler(message)
            except Exception:
                log.exception("AMI event handler failed", extra={"event": name})

    def _handlers_of(self, name: str) -> tuple[EventHandler, ...]:
        """The handlers that want this event, worked out once per name (an event may also be
        parsed for an action that was waiting, or for another handler, and then wanted by none)."""
        if len(self._handlers_for) > 1024:  # names come from the PBX: keep a broken one's from growing this
            self._handlers_for.clear()
        handlers = self._handlers_for[name] = tuple(
            handler for handler, names in self._handlers if names is None or name in names)
        return handlers

    def _settle(self, pending: _Pending, message: AmiMessage) -> bool:
        """Feed a message with our ActionID to its waiting action; True if consumed."""
        future = pending.future
        if future.done():
            return message.kind != "event"
        if message.kind == "response":
            if message.name.lower() == "error":
                future.set_exception(AmiError(pending.name, message.get("Message", "error")))
            elif not pending.is_list or message.get("EventList", "").lower() != "start":
                future.set_result(message)
            return True
        if pending.is_list and message.kind == "event":
            if message.get("EventList", "").lower() == "complete":
                future.set_result(message)
                if pending.on_complete is not None:
                    pending.on_complete(pending.items)
            else:
                pending.items.append(message)
            return True
        return False  # an event carrying our ActionID, e.g. OriginateResponse: a normal event

    # -- link -----------------------------------------------------------------

    async def _run(self, first_try: asyncio.Future) -> None:
        delays = backoff(self.settings.reconnect_max_delay)
        while True:
            closed = None
            try:
                closed = await self._connect_and_login()
                delays = backoff(self.settings.reconnect_max_delay)  # a link that worked starts again from short waits
            except Exception as exc:  # any failure to connect: log once, back off
                self._note_failure(exc)
            if not first_try.done():
                first_try.set_result(None)
            if closed is not None:
                exc = await self._watch(closed)
                self._drop_link(AmiNotConnected("the AMI link was lost"))
                if self.status is LinkStatus.STOPPED:
                    return
                if self.status is LinkStatus.CONNECTED:
                    self.status = LinkStatus.CONNECTING
                    log.warning("AMI link to %s:%s lost (%s); reconnecting", self.settings.host,
                                self.settings.port, exc or "closed by the PBX")
            await asyncio.sleep(next(delays))

    async def _watch(self, closed: asyncio.Future) -> Exception | None:
        """Wait until the link closes; ping when it is quiet, and drop a PBX that stops answering."""
        loop = asyncio.get_running_loop()
        while True:
            try:
                return await asyncio.wait_for(asyncio.shield(closed), self.settings.ping_interval)
            except TimeoutError:
                pass
            if loop.time() - self.last_received < self.settings.ping_interval:
                continue  # the PBX is talking: no need to ask whether it is there
            try:
                await self.send("Ping")
            except TimeoutError:
                where = f"{self.settings.host}:{self.settings.port}"
                self.status, self.last_error = (LinkStatus.NOT_ANSWERING,
                                                f"AMI at {where} stopped answering (no Pong within "
                                                f"{self.settings.action_timeout:g} s); reconnecting")
                log.error(self.last_error)
                self._drop_link(AmiNotConnected(self.last_error))
                return None
            except AmiNotConnected:
                return await closed

    async def _connect_and_login(self) -> asyncio.Future:
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(self.settings.connect_timeout):
            transport, protocol = await loop.create_connection(
                lambda: _AmiProtocol(self), self.settings.host, self.settings.port)
        self._transport, self._protocol = transport, protocol
        try:
            await self.send("Login", {"Username": self.settings.username, "Secret": self.settings.secret,
                                      "Events": "on"}, timeout=self.settings.connect_timeout)
        except AmiError as exc:
            self._drop_link(exc)
            raise LoginFailed(exc.message) from None
        except TimeoutError:
            self._drop_link(AmiNotConnected("no answer to the Login"))
            raise LoginUnanswered() from None
        except BaseException:
            self._drop_link(AmiNotConnected("login did not finish"))
            raise
        self.status = LinkStatus.CONNECTED
        self.last_error = ""
        self._connected.set()
        log.info("AMI connected to %s:%s (%s)", self.settings.host, self.settings.port, self.banner)
        for callback in self._on_connected:
            try:
                await callback()
            except Exception:
                log.exception("AMI on-connected callback failed")
        return protocol.closed

    def _note_failure(self, exc: BaseException) -> None:
        where = f"{self.settings.host}:{self.settings.port}"
        if isinstance(exc, LoginFailed):
            status, text = LinkStatus.LOGIN_FAILED, f"AMI login to {where} as {self.settings.username!r} refused: {exc}"
        elif isinstance(exc, LoginUnanswered):
            status, text = LinkStatus.NOT_ANSWERING, (f"AMI at {where} takes the connection but did not answer "
                                                      f"the Login within {self.settings.connect_timeout:g} s")
        elif isinstance(exc, TimeoutError):
            status, text = LinkStatus.UNREACHABLE, f"AMI at {where} did not answer within {self.settings.connect_timeout:g} s"
        else:
            status, text = LinkStatus.UNREACHABLE, f"AMI at {where} unreachable: {exc}"
        # One line per new problem, not one per retry: a PBX that stopped answering and still does not
        # answer the Login after reconnecting is the same problem.
        if text != self.last_error and not (status is self.status is LinkStatus.NOT_ANSWERING):
            log.error(text)
        self.status, self.last_error = status, text

    def _drop_link(self, exc: Exception) -> None:
        self._connected.clear()
        if self._protocol is not None:  # its counts outlive the connection
            parser = self._protocol.parser
            self._earlier_skipped.update(parser.skipped)
            self._earlier_damaged.update(oversized=parser.oversized, undecodable=parser.undecodable)
        if self._transport is not None:
            self._transport.close()
        self._transport = self._protocol = None
        for pending in self._pending.values():
            if not pending.future.done():
                pending.future.set_exception(exc)
        self._pending.clear()
        for _, waiter in self._awaited.values():
            if not waiter.done():
                waiter.set_exception(exc)


def backoff(limit: float, first: float = 0.5, rng: random.Random | None = None) -> Iterator[float]:
    """Seconds to wait before each reconnect: `first`, doubling up to `limit`, each times a random
    0.5-1.5, so servers that lost the same PBX do not all knock again at the same moment."""
    rng = rng or random.Random()
    delay = min(first, limit)
    while True:
        yield delay * rng.uniform(0.5, 1.5)
        delay = min(delay * 2, limit)


class LoginFailed(Exception):
    pass


class LoginUnanswered(Exception):
    """The PBX took the TCP connection but never answered the Login: it is there, and hung."""
