"""The simulator's FastAGI client: Asterisk's side of agi://host:4573/script.

Speaks as ../shared/ami-captures/agi-ivr.agi.txt shows: the agi_* environment
and an empty line, then one reply per command; `HANGUP` alone on a line once
the caller is gone (before the next reply when a command was running), 511
for media commands on a dead channel, 510 for unknown commands, and a 520-
usage block for a command without its arguments.

GET DATA and WAIT FOR DIGIT take the caller's keys from the channel's `keys`
(SimChannel), with a DTMFBegin and a DTMFEnd per key as agi-ivr.ami calls 1
and 4 show: `200 result=1234`, `200 result=2` after `2#`, `200 result=
(timeout)` when nothing was pressed, `200 result=52` (ASCII) from WAIT FOR
DIGIT, 0 when it timed out, and -1 once the caller hung up.
"""

from __future__ import annotations

import asyncio
import logging
import random
import shlex
import threading
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from contactcentre.telephony.agi.protocol import MAX_LINE_BYTES
from contactcentre.telephony.simulator.channels import HANG_UP, until_interrupted

if TYPE_CHECKING:
    from contactcentre.telephony.simulator.applications import PbxThread

log = logging.getLogger(__name__)

# Commands res_agi lets run on a dead channel; the rest answer 511.
DEAD_OK = {"GET VARIABLE", "GET FULL VARIABLE", "SET VARIABLE", "NOOP", "VERBOSE", "HANGUP", "EXEC",
           "CHANNEL STATUS", "DATABASE GET", "DATABASE PUT", "DATABASE DEL"}
USAGE = {
    "STREAM FILE": "Send the given file, allowing playback to be interrupted by the given digits, if any. Returns "
                   "<literal>0</literal> if playback completes without a digit being pressed, or the ASCII numerical "
                   "value of the digit if one was pressed, or <literal>-1</literal> on error or if the channel was "
                   "disconnected.",
    "GET DATA": "Stream the given file, and receive DTMF data. Returns the digits received from the channel at the "
                "other end.",
    "EXEC": "Executes <replaceable>application</replaceable> with given <replaceable>options</replaceable>.",
    "SET VARIABLE": "Sets a variable to the current channel.",
    "GET VARIABLE": "Returns <literal>0</literal> if <replaceable>variablename</replaceable> is not set.",
}
COMMANDS = ("GET FULL VARIABLE", "GET VARIABLE", "SET VARIABLE", "STREAM FILE", "GET DATA", "WAIT FOR DIGIT",
            "SAY DIGITS", "SAY NUMBER", "CHANNEL STATUS", "DATABASE GET", "DATABASE PUT", "DATABASE DEL",
            "ANSWER", "HANGUP", "NOOP", "VERBOSE", "EXEC")
SHORT_MEDIA = 0.05  # seconds a simulated prompt plays: long enough to be a real wait, short for tests
KEY_MS = "160"  # how long each simulated key is held, as the captures' DTMFEnd DurationMs
GET_DATA_TIMEOUT_MS = 6000  # GET DATA without a timeout (or with 0) waits as long as the PBX's default


async def run_agi(thread: PbxThread, request: str = "") -> str:
    """Run the FastAGI session of the channel `thread` runs on; return AGISTATUS (SUCCESS, HANGUP or FAILURE).

    `request` is AGI()'s agi://host:port/script: the session asks for its script (the pbx's agi_url's
    when there is none) at the host and port of the pbx's agi_url. It sees the channel as hung up
    once it is hung up *or* redirected elsewhere (a Redirect, a blind transfer): res_agi reads either
    as a hangup, and the dialplan carries on at the new place only when the server ends the session."""
    url = urlsplit(thread.pbx.agi_url)
    script = (urlsplit(request).path if request.startswith("agi://") else "") or url.path
    try:
        reader, writer = await asyncio.open_connection(url.hostname, url.port or 4573, limit=MAX_LINE_BYTES)
    except OSError as exc:
        log.warning("FastAGI server %s unreachable: %s", thread.pbx.agi_url, exc)
        return "FAILURE"
    session = _AgiPeer(thread, reader, writer, script.lstrip("/"))
    try:
        return await session.serve()
    finally:
        writer.close()


class _AgiPeer:
    def __init__(self, thread: PbxThread, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, script: str):
        self.thread = thread
        self.channel = thread.channel
        self.reader = reader
        self.writer = writer
        self.script = script
        self.notified = False
        self._ran_when_gone = False

    async def serve(self) -> str:
        self.writer.write(self._environment())
        gone = asyncio.ensure_future(self.channel.interrupted.wait())
        read: asyncio.Task | None = None
        try:
            while True:
                if read is None:
                    read = asyncio.ensure_future(self.reader.readline())
                waits = {read} if self.notified else {read, gone}
                done, _ = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
                if read not in done:
                    self._notify_hangup()  # idle when the caller left: Asterisk says so at once
                    continue
                line, read = read.result(), None
                if not line:
                    return "HANGUP" if self.channel.interrupted.is_set() else "SUCCESS"
                reply = await self._execute(line.decode("utf-8", errors="replace").strip())
                if self._ran_when_gone and not self.notified:
                    self._notify_hangup()
                self.writer.write(reply.encode())
                await self.writer.drain()
        except (ConnectionError, asyncio.LimitOverrunError, ValueError):
            return "HANGUP" if self.channel.interrupted.is_set() else "SUCCESS"
        finally:
            gone.cancel()
            if read is not None:
                read.cancel()

    def _notify_hangup(self) -> None:
        self.notified = True
        self.writer.write(b"HANGUP\n")

    def _environment(self) -> bytes:
        caller = self.channel
        env = [
            ("agi_network", "yes"), ("agi_network_script", self.script), ("agi_request", self._request()),
            ("agi_channel", caller.name), ("agi_language", "en"), ("agi_type", "PJSIP"),
            ("agi_uniqueid", caller.uniqueid), ("agi_version", "22.10.1"),
            ("agi_callerid", caller.caller_num or "unknown"), ("agi_calleridname", caller.caller_name or "unknown"),
            ("agi_callingpres", "0"), ("agi_callingani2", "0"), ("agi_callington", "0"), ("agi_callingtns", "0"),
            ("agi_dnid", caller.dnid or "unknown"), ("agi_rdnis", "unknown"), ("agi_context", caller.context),
            ("agi_extension", caller.exten), ("agi_priority", str(caller.priority)), ("agi_enhanced", "0.0"),
            ("agi_accountcode", ""), ("agi_threadid", str(threading.get_ident())),
        ]
        return "".join(f"{k}: {v}\n" for k, v in env).encode() + b"\n"

    def _request(self) -> str:
        url = urlsplit(self.thread.pbx.agi_url)
        return f"agi://{url.netloc}/{self.script}"

    async def _execute(self, line: str) -> str:
        """One command, with the AGIExecStart/End events Asterisk sends around it."""
        gone = self.channel.interrupted.is_set()
        self._ran_when_gone = gone
        command, args = _split(line)
        if command is None:
            return "510 Invalid or unknown command\n"
        if gone and command not in DEAD_OK:
            return "511 Command Not Permitted on a dead channel or intercept routine\n"
        command_id = str(random.getrandbits(31))
        pbx, caller = self.thread.pbx, self.channel
        pbx.channel_event("AGIExecStart", caller, ("CommandId", command_id), ("Command", line), privilege="agi,all")
        reply = await self._run(command, args)
        code = reply[:3]
        result = "Success" if code == "200" else ("Usage" if code == "520" else "Failure")
        pbx.channel_event("AGIExecEnd", caller, ("CommandId", command_id), ("Command", line),
                          ("ResultCode", code), ("Result", result), privilege="agi,all")
        return reply

    async def _run(self, command: str, args: list[str]) -> str:
        if len(args) < NEEDS.get(command, 0):
            usage = USAGE.get(command, "See the AGI documentation.")
            return f"520-Invalid command syntax.  Proper usage follows:\n{usage}\n520 End of proper usage.\n"
        return await getattr(self, HANDLERS[command])(args)

    async def _answer(self, args: list[str]) -> str:
        await self.thread.execute("Answer", "")
        return "200 result=0\n"

    async def _hangup(self, args: list[str]) -> str:
        # res_agi's HANGUP is a soft hangup of the channel (SoftHangupRequest), not the far end's.
        self.thread.pbx.request_hangup(self.channel, 16, event="SoftHangupRequest")
        return "200 result=1\n"

    async def _zero(self, args: list[str]) -> str:
        return "200 result=0\n"

    async def _one(self, args: list[str]) -> str:
        return "200 result=1\n"

    async def _channel_status(self, args: list[str]) -> str:
        return f"200 result={self.channel.state}\n"

    async def _set_variable(self, args: list[str]) -> str:
        self.thread.pbx.set_variable(self.channel, args[0], args[1])
        return "200 result=1\n"

    async def _get_variable(self, args: list[str]) -> str:
        value = self.thread.variable(args[0].strip("${}"))
        return f"200 result=1 ({value})\n" if value is not None else "200 result=0\n"

    async def _stream_file(self, args: list[str]) -> str:
        return await self._play(endpos=8000)

    async def _get_data(self, args: list[str]) -> str:
        """GET DATA file [timeout_ms [max_digits]]: the prompt, then the caller's keys up to the
        maximum or a `#`; what was pressed by then, with (timeout) if the caller stopped short."""
        timeout_ms = _number(args, 1, 0) or GET_DATA_TIMEOUT_MS
        most = _number(args, 2, 1024)
        if (await self._play()).startswith("200 result=-1"):
            return "200 result=-1\n"
        entry = self._next_keys()
        if entry == HANG_UP:
            return "200 result=-1\n"
        cut = entry.find("#")
        end = min(len(entry) if cut < 0 else cut + 1, most)
        taken = entry[:end]
        self._press(taken, entry[end:])
        digits = taken.rstrip("#")
        if taken.endswith("#") or len(digits) >= most:
            return f"200 result={digits}\n"
        if await until_interrupted(self.channel, timeout_ms / 1000):
            return "200 result=-1\n"
        return f"200 result={digits} (timeout)\n"

    async def _wait_for_digit(self, args: list[str]) -> str:
        """WAIT FOR DIGIT timeout_ms (-1: for ever): the ASCII code of the caller's next key, 0 if none."""
        timeout_ms = _number(args, 0, -1)
        entry = self._next_keys()
        if entry == HANG_UP:
            return "200 result=-1\n"
        if entry:
            self._press(entry[0], entry[1:])
            return f"200 result={ord(entry[0])}\n"
        if await until_interrupted(self.channel, timeout_ms / 1000 if timeout_ms >= 0 else None):
            return "200 result=-1\n"
        return "200 result=0\n"

    def _next_keys(self) -> str:
        """The caller's next entry; HANG_UP hangs the caller up there and then, as they would."""
        entry = self.channel.keys.popleft() if self.channel.keys else ""
        if entry == HANG_UP:
            call = self.thread.pbx.calls.get(self.channel.uniqueid)
            if call is not None:
                call.caller_hangup()
            else:
                self.thread.pbx.request_hangup(self.channel)
        return entry

    def _press(self, keys: str, left: str) -> None:
        """The caller presses `keys` (DTMFBegin and DTMFEnd each); `left` waits for the next prompt."""
        if left:
            self.channel.keys.appendleft(left)
        pbx, caller = self.thread.pbx, self.channel
        for key in keys:
            pbx.channel_event("DTMFBegin", caller, ("Digit", key), ("Direction", "Received"), privilege="dtmf,all")
            pbx.channel_event("DTMFEnd", caller, ("Digit", key), ("DurationMs", KEY_MS), ("Direction", "Received"),
                              privilege="dtmf,all")

    async def _play(self, endpos: int | None = None) -> str:
        result = -1 if await until_interrupted(self.channel, SHORT_MEDIA) else 0
        return f"200 result={result}" + (f" endpos={endpos}" if endpos is not None else "") + "\n"

    async def _exec(self, args: list[str]) -> str:
        """EXEC runs a dialplan application on the channel, as pbx_exec does: while it runs, the
        channel's application is that one (what a Redirect's Newexten then names)."""
        if self.channel.interrupted.is_set():
            return "200 result=-1\n"
        channel = self.channel
        running = channel.application, channel.application_data
        try:
            result = await self.thread.execute(args[0], args[1] if len(args) > 1 else "")
        finally:
            channel.application, channel.application_data = running
        return f"200 result={result}\n"


def _number(args: list[str], index: int, default: int) -> int:
    """A whole-number argument as res_agi reads it (atoi), `default` when it is not there."""
    if len(args) <= index:
        return default
    text = args[index].strip()
    sign = -1 if text.startswith("-") else 1
    digits = text.lstrip("+-")
    count = len(digits) - len(digits.lstrip("0123456789"))
    return sign * int(digits[:count]) if count else 0


NEEDS = {"STREAM FILE": 1, "GET DATA": 1, "EXEC": 1, "SET VARIABLE": 2, "GET VARIABLE": 1,
         "GET FULL VARIABLE": 1, "WAIT FOR DIGIT": 1, "SAY DIGITS": 1, "SAY NUMBER": 1}
HANDLERS = {"ANSWER": "_answer", "HANGUP": "_hangup", "NOOP": "_zero", "SAY DIGITS": "_zero",
            "SAY NUMBER": "_zero", "WAIT FOR DIGIT": "_wait_for_digit", "VERBOSE": "_one",
            "CHANNEL STATUS": "_channel_status", "SET VARIABLE": "_set_variable", "GET VARIABLE": "_get_variable",
            "GET FULL VARIABLE": "_get_variable", "DATABASE GET": "_zero", "DATABASE PUT": "_zero",
            "DATABASE DEL": "_zero", "STREAM FILE": "_stream_file", "GET DATA": "_get_data", "EXEC": "_exec"}


def _split(line: str) -> tuple[str | None, list[str]]:
    upper = line.upper()
    for command in COMMANDS:
        if upper == command or upper.startswith(command + " "):
            rest = line[len(command):].strip()
            try:
                return command, shlex.split(rest) if rest else []
            except ValueError:
                return command, rest.split()
    return None, []
