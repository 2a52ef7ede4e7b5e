"""The FastAGI server against Asterisk's own bytes (agi-ivr.agi.txt) and against bad peers."""

import asyncio
import gc
import logging
import shlex

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contactcentre.config import AgiSettings
from contactcentre.telephony.agi.protocol import MAX_LINE_BYTES, AgiCommandError
from contactcentre.telephony.agi.server import AgiHangup, AgiServer
from tests.captures import agi_sessions


async def play_asterisk(port: int, lines: list[str], close_at_end: bool = False) -> list[str]:
    """Be Asterisk: send what it sent, in order, after reading each command; return the commands read.

    `close_at_end`: drop the connection after the last line, as a PBX that dies would."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    received = []
    for line in lines:
        if line.startswith("< "):
            received.append((await asyncio.wait_for(reader.readline(), 5)).decode().rstrip("\n"))
        else:
            writer.write(line[2:].encode() + b"\n")
            await writer.drain()
    if not close_at_end:
        await asyncio.wait_for(reader.read(), 5)  # the server closes when its script ends
    writer.close()
    return received


async def run_script(script, lines, timeout: float = 5.0, close_at_end: bool = False):
    results = asyncio.get_running_loop().create_future()

    async def handler(session):
        try:
            results.set_result(await script(session))
        except BaseException as exc:
            results.set_exception(exc)
            raise

    server = AgiServer(AgiSettings(host="127.0.0.1", port=0, command_timeout=timeout), {"inbound": handler})
    await server.start()
    try:
        received = await play_asterisk(server.port, lines, close_at_end)
        return received, await results, server
    finally:
        await server.close()


async def test_session_one_of_the_capture_reads_as_typed_results():
    async def script(s):
        out = {"answer": await s.answer(), "stream": await s.stream_file("custom/welcome"),
               "digits": (await s.get_data("custom/enter-digits", 8000, 4)).digits}
        await s.set_variable("IVR_CHOICE", "1234")
        out["var"] = await s.get_variable("IVR_CHOICE")
        out["full"] = (await s.command("GET FULL VARIABLE", "${CALLERID(num)} on ${CHANNEL(name)}")).data
        out["status"] = (await s.command("CHANNEL STATUS")).result
        await s.command("DATABASE PUT", "ivr", "lastcaller", "+441632960201")
        await s.command("DATABASE GET", "ivr", "lastcaller")
        await s.command("VERBOSE", "caller chose 1234", 1)
        with pytest.raises(AgiCommandError) as unknown:
            await s.command("FROBNICATE THE CALL")
        with pytest.raises(AgiCommandError) as usage:
            await s.command("STREAM FILE")
        out["codes"] = (unknown.value.code, usage.value.code)
        out["usage"] = usage.value.message
        out["queue"] = (await s.exec("Queue", "support,tT,,,120")).result
        out["queuestatus"] = await s.get_variable("QUEUESTATUS")
        await s.hangup()
        out["env"] = (s.caller_number, s.caller_name, s.channel, s.script)
        return out

    received, out, _ = await run_script(script, agi_sessions()[0])
    assert out["answer"].result == 0 and out["stream"].endpos == 16000
    assert out["digits"] == "1234" and out["var"] == "1234"
    assert out["full"] == "+441632960201 on PJSIP/carrier-00000000"
    assert out["status"] == 6
    assert out["codes"] == (510, 520)
    assert out["usage"].startswith("Invalid command syntax.") and "PLAYBACKSTATUS" in out["usage"]
    assert out["queue"] == -1 and out["queuestatus"] is None
    assert out["env"] == ("+441632960201", "Jane Smith", "PJSIP/carrier-00000000", "inbound")
    expected = [line[2:] for line in agi_sessions()[0] if line.startswith("< ")]
    # the same commands with the same arguments as the real exchange (quoting may differ)
    assert [shlex.split(line) for line in received] == [shlex.split(line) for line in expected]


async def test_session_four_of_the_capture_waits_for_a_digit_and_sees_the_hangup_notice():
    async def script(s):
        out = {"answer": (await s.answer()).result, "keys": (await s.get_data("custom/enter-digits", 6000, 4)).digits}
        out["waited"] = (await s.wait_for_digit(2000)).result
        out["played"] = (await s.exec("Playback", "custom/welcome")).result
        out["set"] = (await s.set_variable("__QUEUE_PRIO", "5")).result
        out["hangup"] = (await s.hangup()).result
        out["noop"] = (await s.command("NOOP", "after", "hangup")).result
        out["hung_up"] = s.hung_up.is_set()
        return out

    received, out, server = await run_script(script, agi_sessions()[3])
    # WAIT FOR DIGIT gives 0 when no key came within its 2 s (else the key's ASCII code).
    assert out == {"answer": 0, "keys": "2", "waited": 0, "played": 0, "set": 1, "hangup": 1, "noop": 0,
                   "hung_up": True}
    expected = [line[2:] for line in agi_sessions()[3] if line.startswith("< ")]
    assert [shlex.split(line) for line in received] == [shlex.split(line) for line in expected]
    assert server.protocol_errors == 0


async def test_say_digits_and_say_number_send_asterisks_syntax_and_read_the_key_that_cut_them_short():
    async def script(s):
        return (await s.say_digits("4021"), await s.say_number(1250, "#"), await s.say_number(7))

    lines = ["> agi_network_script: inbound", "> agi_uniqueid: 1.4", ">",
             "< SAY DIGITS 4021 \"\"", "> 200 result=0",
             "< SAY NUMBER 1250 #", "> 200 result=35",  # the caller pressed # (ASCII 35) and cut it short
             "< SAY NUMBER 7 \"\"", "> 200 result=-1"]  # hung up while it played
    received, (digits, number, hung_up), _ = await run_script(script, lines)
    assert received == ["SAY DIGITS 4021 \"\"", "SAY NUMBER 1250 #", "SAY NUMBER 7 \"\""]
    assert (digits.result, chr(number.result), hung_up.result) == (0, "#", -1)


async def test_caller_hanging_up_mid_prompt_then_a_dead_channel():
    async def script(s):
        await s.answer()
        played = await s.stream_file("custom/long-message")
        choice = await s.get_variable("IVR_CHOICE")
        hung_up = s.hung_up.is_set()
        with pytest.raises(AgiCommandError) as dead:
            await s.stream_file("custom/welcome")
        return played, choice, hung_up, dead.value.code

    _, (played, choice, hung_up, code), _ = await run_script(script, agi_sessions()[2])
    assert played.result == -1 and played.endpos == 24160
    assert choice is None and hung_up
    assert code == 511


async def test_a_peer_that_goes_silent_times_out_and_is_counted():
    async def script(s):
        await s.answer()

    server = AgiServer(AgiSettings(host="127.0.0.1", port=0, command_timeout=0.3), {"inbound": script})
    await server.start()
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(b"agi_network: yes\nagi_network_script: inbound\nagi_uniqueid: 1.1\n\n")
    assert await asyncio.wait_for(reader.readline(), 2) == b"ANSWER\n"
    assert await asyncio.wait_for(reader.read(), 2) == b""  # no reply from us: the server gives up and closes
    assert server.protocol_errors == 1
    writer.close()
    await server.close()


async def test_a_line_over_the_limit_is_refused_and_counted():
    server = AgiServer(AgiSettings(host="127.0.0.1", port=0, command_timeout=2), {})
    await server.start()
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(b"agi_network: yes\nagi_callerid: " + b"9" * (MAX_LINE_BYTES + 1) + b"\n\n")
    await writer.drain()
    assert await asyncio.wait_for(reader.read(), 3) == b""
    assert server.protocol_errors == 1
    writer.close()
    await server.close()


async def test_a_reply_line_over_the_limit_mid_session_is_counted_as_a_protocol_error():
    async def script(s):
        with pytest.raises(AgiHangup):
            await s.answer()
        return "hangup seen"

    lines = ["> agi_network_script: inbound", "> agi_uniqueid: 1.5", ">", "< ANSWER",
             "> 200 result=0 (" + "x" * (MAX_LINE_BYTES + 10) + ")"]
    _, out, server = await run_script(script, lines, close_at_end=True)
    assert out == "hangup seen" and server.protocol_errors == 1


async def test_closing_the_server_mid_session_ends_the_session_quietly():
    failures = Failures()
    loop = asyncio.get_running_loop()
    previous = loop.get_exception_handler()
    loop.set_exception_handler(failures.loop_error)
    started = loop.create_future()

    async def script(s):
        started.set_result(None)
        await s.answer()  # no reply ever comes: the server shuts down meanwhile

    server = AgiServer(AgiSettings(host="127.0.0.1", port=0, command_timeout=30), {"inbound": script})
    try:
        await server.start()
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(b"agi_network: yes\nagi_network_script: inbound\nagi_uniqueid: 1.6\n\n")
        await asyncio.wait_for(started, 2)
        await server.close()
        assert await asyncio.wait_for(reader.read(), 2) == b"ANSWER\n"  # then the server hung up
        writer.close()
        for _ in range(3):
            await asyncio.sleep(0)  # asyncio's stream callbacks for the ended session run
    finally:
        loop.set_exception_handler(previous)
    assert failures.seen == [] and not server.sessions


async def test_a_closed_connection_during_a_command_is_a_hangup():
    async def script(s):
        with pytest.raises(AgiHangup):
            await s.answer()
        return "hangup seen"

    lines = ["> agi_network_script: inbound", "> agi_uniqueid: 1.2", ">", "< ANSWER"]
    _, out, server = await run_script(script, lines, close_at_end=True)
    assert out == "hangup seen" and server.protocol_errors == 0  # a hangup, not an error


class Failures(logging.Handler):
    """What must never happen to the FastAGI server, whatever a peer sends: an error logged as a
    failure (a handler crashed on a reply it should have refused), or an exception leaving a
    connection's task (the loop's exception handler)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.seen: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.seen.append(f"{record.getMessage()}: {record.exc_info[1]!r}" if record.exc_info else record.getMessage())

    def loop_error(self, loop, context: dict) -> None:
        self.seen.append(f"{context.get('message')}: {context.get('exception')!r}")


async def feed_fastagi(chunks: list[bytes]) -> tuple[AgiServer, list, list[str]]:
    """A FastAGI server whose script runs every typed command; `chunks` written one after another,
    the server let read between them. Returns the server, the sessions its script ran for, and any failures."""
    ran, failures = [], Failures()

    async def script(s):
        ran.append(s.env)
        await s.answer()
        await s.stream_file("custom/welcome", "0123456789")
        await s.get_data("custom/enter-digits", 100, 4)
        await s.wait_for_digit(100)
        await s.say_digits("1234")
        await s.say_number(42)
        await s.set_variable("IVR_CHOICE", "1")
        await s.get_variable("IVR_CHOICE")
        await s.exec("Queue", "support,tT,,,120")
        await s.hangup()

    loop = asyncio.get_running_loop()
    logger = logging.getLogger("contactcentre.telephony.agi")
    logger.addHandler(failures)
    previous = loop.get_exception_handler()
    loop.set_exception_handler(failures.loop_error)
    server = AgiServer(AgiSettings(host="127.0.0.1", port=0, command_timeout=0.2), {"inbound": script})
    try:
        await server.start()
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        try:
            for chunk in chunks:
                writer.write(chunk)
                await writer.drain()
                await asyncio.sleep(0)  # the server reads what has come so far
            writer.write_eof()
            await asyncio.wait_for(reader.read(), 5)
        except OSError:
            pass  # the server refused the peer and hung up while it was still writing
        writer.close()
        await server.close()
        gc.collect()  # a task that died with an exception nobody read reports it when collected
    finally:
        loop.set_exception_handler(previous)
        logger.removeHandler(failures)
    return server, ran, failures.seen


@settings(max_examples=40, deadline=None)
@given(st.binary(max_size=2048))
async def test_random_bytes_never_crash_the_fastagi_server(data):
    server, ran, failures = await feed_fastagi([data])
    assert failures == []
    assert server.protocol_errors + len(ran) <= 1


def split_at(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({min(cut, len(data)) for cut in cuts})
    return [data[a:b] for a, b in zip([0, *points], [*points, len(data)])]


_ASTERISK_SIDE = [b"".join(line[2:].encode() + b"\n" for line in session if line.startswith(">"))
                  for session in agi_sessions()]


@settings(max_examples=60, deadline=None)
@given(session=st.sampled_from(_ASTERISK_SIDE), edits=st.lists(
    st.tuples(st.integers(0, 4000), st.sampled_from(["flip", "drop", "insert", "repeat"]), st.binary(min_size=1, max_size=12)),
    max_size=6), cuts=st.lists(st.integers(0, 4000), max_size=8))
async def test_mutated_asterisk_sessions_split_across_reads_never_crash_the_fastagi_server(session, edits, cuts):
    data = bytearray(session)
    for at, how, blob in edits:
        at = at % (len(data) + 1)
        if how == "flip" and at < len(data):
            data[at] ^= blob[0] or 1
        elif how == "drop":
            del data[at:at + len(blob)]
        elif how == "insert":
            data[at:at] = blob
        else:
            data[at:at] = data[at:at + 40]  # a repeated piece: a reply or env line twice
    server, ran, failures = await feed_fastagi(split_at(bytes(data), cuts))
    assert failures == []
    assert server.protocol_errors + len(ran) >= 1  # refused, or served to the end as far as the bytes went


async def test_get_data_may_take_its_own_timeout_beyond_the_command_timeout():
    results = asyncio.get_running_loop().create_future()

    async def script(s):
        results.set_result(((await s.get_data("custom/survey-agent", 1000, 1)).digits, s.hung_up.is_set()))

    server = AgiServer(AgiSettings(host="127.0.0.1", port=0, command_timeout=0.3), {"inbound": script})
    await server.start()
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(b"agi_network: yes\nagi_network_script: inbound\nagi_uniqueid: 1.3\n\n")
    assert await asyncio.wait_for(reader.readline(), 2) == b"GET DATA custom/survey-agent 1000 1\n"
    await asyncio.sleep(0.6)  # the caller's time to press a key: twice the command timeout
    writer.write(b"200 result= (timeout)\n")
    assert await asyncio.wait_for(results, 2) == ("", False)
    assert server.protocol_errors == 0
    writer.close()
    await server.close()
