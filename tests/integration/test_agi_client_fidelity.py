"""The simulator's FastAGI client speaks as Asterisk did in agi-ivr.agi.txt.

A raw FastAGI server (no AgiSession: every byte is seen) sends the commands of
captured sessions 1, 3 and 4 to the simulator (whose caller keys what the
captured caller keyed) and keeps what comes back; the
environment block and the shape of each reply, HANGUP notices included, must
be the captured ones. Values (ids, endpos, the thread id) may differ.
"""

import asyncio
import re

from contactcentre.telephony.simulator.pbx import SimulatedPbx
from tests.captures import agi_sessions


def captured_session(number: int) -> tuple[list[str], list[tuple[str, list[str]]]]:
    """(environment lines, [(command, reply lines)]) of a captured session."""
    lines = agi_sessions()[number - 1]
    blank = next(i for i, line in enumerate(lines) if line.rstrip() == ">")  # the environment's end
    environment = [line[2:] for line in lines[:blank]]
    exchanges = []
    for line in lines[blank + 1:]:
        if line.startswith("< "):
            exchanges.append((line[2:], []))
        else:
            exchanges[-1][1].append(line[2:])
    return environment, exchanges


def shape(reply: str) -> str:
    """A reply with its values taken out: `200 result=N (data) endpos=N`, `511 ...`, `HANGUP`."""
    reply = re.sub(r"result=-1\b", "result=MINUS", reply)
    reply = re.sub(r"result=\d+", "result=N", reply)
    reply = re.sub(r"\(.*\)", "(data)", reply)
    return re.sub(r"endpos=\d+", "endpos=N", reply)


async def speak(commands: list[str], hang_up_during: str | None = None,
                keys: tuple[str, ...] = ()) -> tuple[list[str], list[list[str]]]:
    """Run a FastAGI server that sends `commands` and records every reply line; return
    (environment lines, reply lines per command) as the simulator sent them. `keys`: what the
    simulated caller keys in at each prompt that waits for keys."""
    result = asyncio.get_running_loop().create_future()

    async def serve(reader, writer):
        environment = []
        while (line := (await reader.readline()).decode().rstrip("\n")) != "":
            environment.append(line)
        replies = []
        for command in commands:
            writer.write(command.encode() + b"\n")
            await writer.drain()
            got = []
            while True:
                line = (await asyncio.wait_for(reader.readline(), 5)).decode().rstrip("\n")
                got.append(line)
                if line != "HANGUP":
                    break
            replies.append(got)
        writer.close()
        result.set_result((environment, replies))

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    sim = SimulatedPbx("cc", "s", f"agi://127.0.0.1:{port}/inbound")
    await sim.start("127.0.0.1", 0)
    try:
        call = sim.place_call("+441632960201", "Jane Smith", keys=keys)
        if hang_up_during:
            # the caller hangs up once Asterisk has started the command (AGIExecStart), as in the capture
            sim.taps.append(lambda name, headers: name == "AGIExecStart" and dict(headers)["Command"].startswith(
                hang_up_during) and call.caller_hangup())
        return await asyncio.wait_for(result, 10)
    finally:
        await sim.close()
        server.close()


def _keys(lines: list[str]) -> list[str]:
    return [line.partition(":")[0] for line in lines]


async def test_environment_block_has_asterisks_keys_in_asterisks_order():
    captured_env, _ = captured_session(1)
    environment, _ = await speak(["ANSWER"])
    assert _keys(environment) == _keys(captured_env)
    assert "agi_callerid: +441632960201" in environment and "agi_network_script: inbound" in environment


async def test_caller_hanging_up_during_a_prompt_then_a_dead_channel_as_session_3():
    _, exchanges = captured_session(3)
    commands = [command for command, _ in exchanges]
    _, replies = await speak(commands, hang_up_during="STREAM FILE custom/long-message")
    assert [[shape(r) for r in got] for got in replies] == [[shape(r) for r in want] for _, want in exchanges]


async def test_keys_the_caller_presses_then_the_scripts_own_hangup_as_session_4():
    _, exchanges = captured_session(4)
    # the caller keys 2# at GET DATA and nothing at WAIT FOR DIGIT, as the captured caller did
    _, replies = await speak([command for command, _ in exchanges], keys=("2#", ""))
    assert [[shape(r) for r in got] for got in replies] == [[shape(r) for r in want] for _, want in exchanges]
    keyed = [n for n, (command, _) in enumerate(exchanges) if command.startswith(("GET DATA", "WAIT FOR DIGIT"))]
    assert [replies[n] for n in keyed] == [exchanges[n][1] for n in keyed] == [["200 result=2"], ["200 result=0"]]


async def test_keys_collected_up_to_the_maximum_as_session_1():
    _, exchanges = captured_session(1)
    first = exchanges[:3]  # ANSWER, STREAM FILE, GET DATA custom/enter-digits 8000 4
    _, replies = await speak([command for command, _ in first], keys=("1234",))
    assert [[shape(r) for r in got] for got in replies] == [[shape(r) for r in want] for _, want in first]
    assert replies[2] == first[2][1] == ["200 result=1234"]


async def test_keys_that_stop_short_of_the_maximum_time_out_with_what_was_pressed():
    _, replies = await speak(["GET DATA custom/enter-digits 100 4", "GET DATA custom/enter-digits 100 4",
                              "WAIT FOR DIGIT 100", "WAIT FOR DIGIT 100"], keys=("12", "", "5"))
    assert replies == [["200 result=12 (timeout)"], ["200 result= (timeout)"], [f"200 result={ord('5')}"],
                       ["200 result=0"]]
