"""FastAGI server on asyncio: one AgiSession, one coroutine per call."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

from contactcentre.config import AgiSettings
from contactcentre.telephony.agi.protocol import (
    HANGUP_NOTICE,
    MAX_ENV_LINES,
    MAX_LINE_BYTES,
    AgiCommandError,
    AgiProtocolError,
    AgiResult,
    encode_command,
    parse_env_line,
    parse_result,
)

log = logging.getLogger(__name__)


class AgiHangup(Exception):
    """The channel is gone: Asterisk said HANGUP, or closed the connection."""


class AgiSession:
    """One FastAGI connection. Commands are sent one at a time, in order."""

    def __init__(self, env: dict[str, str], reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 command_timeout: float):
        self.env = env
        self._reader = reader
        self._writer = writer
        self._timeout = command_timeout
        self._replies: asyncio.Queue[str | None] = asyncio.Queue()
        self._lock = asyncio.Lock()
        self.hung_up = asyncio.Event()
        self.broken: AgiProtocolError | None = None  # what ended the replies, if it was not a hangup
        self._pump = asyncio.create_task(self._read_lines(), name=f"agi-{self.uniqueid}")

    @property
    def uniqueid(self) -> str:
        return self.env.get("agi_uniqueid", "")

    @property
    def channel(self) -> str:
        return self.env.get("agi_channel", "")

    @property
    def script(self) -> str:
        return self.env.get("agi_network_script") or urlsplit(self.env.get("agi_request", "")).path.lstrip("/")

    @property
    def caller_number(self) -> str:
        number = self.env.get("agi_callerid", "")
        return "" if number == "unknown" else number

    @property
    def caller_name(self) -> str:
        name = self.env.get("agi_calleridname", "")
        return "" if name == "unknown" else name

    async def _read_lines(self) -> None:
        try:
            while True:
                line = await _read_line(self._reader)
                if line is None:
                    break
                if line == HANGUP_NOTICE:
                    self.hung_up.set()
                    continue
                await self._replies.put(line)
        except AgiProtocolError as exc:
            self.broken = exc  # the server counts it: the peer's replies stopped making sense
            log.warning("FastAGI session dropped: %s", exc, extra={"call_id": self.uniqueid})
        except ConnectionError as exc:
            log.info("FastAGI connection lost: %s", exc, extra={"call_id": self.uniqueid})
        finally:
            self.hung_up.set()
            await self._replies.put(None)

    async def command(self, *parts: object, takes: float = 0.0) -> AgiResult:
        """Send one command and return its 200 result; raise AgiCommandError on 510/511/520.

        The reply may take the session's command timeout, plus `takes` seconds for a command that
        waits on purpose (for the caller's keys, or for the end of a conversation)."""
        line = encode_command(*parts)
        async with self._lock:
            if self._writer.is_closing():
                raise AgiHangup(f"{parts[0]}: the AGI connection is closed")
            self._writer.write(line)
            await self._writer.drain()
            async with asyncio.timeout(self._timeout + takes):
                reply = await self._replies.get()
                if reply is None:
                    raise AgiHangup(f"{line.decode().strip()}: the PBX closed the AGI connection")
                if reply.startswith("520-"):
                    usage = [reply[4:]]
                    while (more := await self._replies.get()) is not None and not more.startswith("520 "):
                        usage.append(more)
                    raise AgiCommandError(line.decode().strip(), 520, "\n".join(usage))
        if reply.startswith("200"):
            return parse_result(reply)
        code, _, message = reply.partition(" ")
        if code in ("510", "511", "520"):
            raise AgiCommandError(line.decode().strip(), int(code), message)
        raise AgiProtocolError(f"unexpected reply {reply[:80]!r} to {line.decode().strip()!r}")

    # -- typed commands -------------------------------------------------------

    async def answer(self) -> AgiResult:
        return await self.command("ANSWER")

    async def hangup(self) -> AgiResult:
        return await self.command("HANGUP")

    async def exec(self, application: str, args: str = "", takes: float = 0.0) -> AgiResult:
        """Run a dialplan application; `takes`: the seconds it may run on purpose (a Dial: ring and talk)."""
        parts = ("EXEC", application, args) if args else ("EXEC", application)
        return await self.command(*parts, takes=takes)

    async def set_variable(self, name: str, value: str) -> AgiResult:
        return await self.command("SET VARIABLE", name, value)

    async def get_variable(self, name: str) -> str | None:
        result = await self.command("GET VARIABLE", name)
        return result.data if result.result == 1 else None

    async def stream_file(self, name: str, escape_digits: str = "") -> AgiResult:
        return await self.command("STREAM FILE", name, escape_digits)

    async def get_data(self, prompt: str, timeout_ms: int, max_digits: int) -> AgiResult:
        """Play `prompt` and collect up to `max_digits` keys (`#` ends early); the caller has
        `timeout_ms` after the prompt, and the reply comes that much later than any other."""
        return await self.command("GET DATA", prompt, timeout_ms, max_digits, takes=timeout_ms / 1000)

    async def wait_for_digit(self, timeout_ms: int) -> AgiResult:
        """The ASCII code of the next key pressed within `timeout_ms`, 0 when none was."""
        return await self.command("WAIT FOR DIGIT", timeout_ms, takes=max(timeout_ms, 0) / 1000)

    async def say_digits(self, digits: str, escape_digits: str = "") -> AgiResult:
        return await self.command("SAY DIGITS", digits, escape_digits)

    async def say_number(self, number: int, escape_digits: str = "") -> AgiResult:
        return await self.command("SAY NUMBER", number, escape_digits)

    async def close(self) -> None:
        self._writer.close()
        try:
            await self._writer.wait_closed()
        except ConnectionError:
            pass
        self._pump.cancel()
        try:
            await self._pump
        except asyncio.CancelledError:
            pass


async def _read_line(reader: asyncio.StreamReader) -> str | None:
    try:
        raw = await reader.readuntil(b"\n")
    except asyncio.IncompleteReadError as exc:
        if exc.partial.strip():
            raise AgiProtocolError(f"connection closed in the middle of a line: {exc.partial[:80]!r}") from None
        return None
    except asyncio.LimitOverrunError:
        raise AgiProtocolError(f"a line longer than {MAX_LINE_BYTES} bytes") from None
    return raw.decode("utf-8", errors="replace").rstrip("\r\n")


AgiHandler = Callable[[AgiSession], Awaitable[None]]


class AgiServer:
    """Accepts FastAGI connections and runs the handler named by the request path."""

    def __init__(self, settings: AgiSettings, handlers: dict[str, AgiHandler]):
        self.settings = settings
        self.handlers = handlers
        self.protocol_errors = 0
        self.sessions: set[asyncio.Task] = set()
        self._server: asyncio.Server | None = None

    @property
    def port(self) -> int:
        assert self._server is not None
        return self._server.sockets[0].getsockname()[1]

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, self.settings.host, self.settings.port,
                                                  limit=MAX_LINE_BYTES)
        log.info("FastAGI listening on %s:%s", self.settings.host, self.port)

    async def close(self) -> None:
        if self._server:
            self._server.close()
        for task in list(self.sessions):
            task.cancel()
        if self.sessions:
            await asyncio.gather(*self.sessions, return_exceptions=True)
        if self._server:
            await self._server.wait_closed()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        self.sessions.add(task)
        try:
            await self._serve(reader, writer)
        except asyncio.CancelledError:
            # close() cancels the sessions still running. Ending the connection's task here, not as
            # cancelled, matters: asyncio 3.11's stream callback asks a cancelled task for its
            # exception and logs the CancelledError that raises as an error.
            pass
        finally:
            self.sessions.discard(task)
            writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        try:
            async with asyncio.timeout(self.settings.command_timeout):
                env = await _read_env(reader)
        except (AgiProtocolError, TimeoutError) as exc:
            self.protocol_errors += 1
            log.warning("FastAGI connection from %s refused: %s", peer, exc or "no environment in time")
            return
        session = AgiSession(env, reader, writer, self.settings.command_timeout)
        handler = self.handlers.get(session.script)
        try:
            if handler is None:
                self.protocol_errors += 1
                log.warning("FastAGI request for unknown script %r", session.script, extra={"call_id": session.uniqueid})
                await session.hangup()
                return
            await handler(session)
        except (AgiHangup, ConnectionError):
            log.info("caller left during the AGI session", extra={"call_id": session.uniqueid})
        except (AgiProtocolError, AgiCommandError, TimeoutError) as exc:
            self.protocol_errors += 1
            log.warning("FastAGI session ended: %s", exc or "timed out", extra={"call_id": session.uniqueid})
        except Exception:
            log.exception("FastAGI handler failed", extra={"call_id": session.uniqueid})
        finally:
            if session.broken is not None:  # the script saw only a hangup; the peer sent garbage
                self.protocol_errors += 1
            await session.close()


async def _read_env(reader: asyncio.StreamReader) -> dict[str, str]:
    env: dict[str, str] = {}
    for _ in range(MAX_ENV_LINES):
        line = await _read_line(reader)
        if line is None:
            raise AgiProtocolError("connection closed before the environment ended")
        if line == "":
            if not env:
                raise AgiProtocolError("empty environment")
            return env
        key, value = parse_env_line(line)
        env[key] = value
    raise AgiProtocolError(f"environment longer than {MAX_ENV_LINES} lines")
