"""The simulator answers actions as Asterisk 22 did in resync.ami: list actions (response,
item events, Complete), errors, and Originate's synchronous and asynchronous replies.

The recorder's actions (resync.ami-sent.txt) are sent again on a raw socket to a simulator
with a call in progress, and each reply is compared with the captured one: the same
messages, the same header names in the same order, and the same values wherever they do not
name a live channel, bridge or time.
"""

from __future__ import annotations

import asyncio

import pytest

from contactcentre.config import AgiSettings
from contactcentre.telephony.agi.server import AgiServer
from contactcentre.telephony.ami.protocol import AmiMessage, AmiParser, encode_action, iter_messages
from contactcentre.telephony.simulator.pbx import SimulatedPbx
from tests.captures import capture

# Headers whose values say which call, channel or moment it is: only their names are compared.
LIVE = {"ActionID", "Channel", "ChannelState", "ChannelStateDesc", "CallerIDNum", "CallerIDName",
        "ConnectedLineNum", "ConnectedLineName", "Context", "Exten", "Priority", "Uniqueid", "Linkedid",
        "Application", "ApplicationData", "Data", "Duration", "BridgeId", "BridgeID", "BridgeUniqueid",
        "BridgeNumChannels", "DNID", "EffectiveConnectedLineNum", "EffectiveConnectedLineName", "Seconds",
        "Writeformat", "Writetrans", "ListItems", "Items", "Timestamp"}


def replies_in_capture() -> dict[str, list[AmiMessage]]:
    """resync.ami's messages carrying each of the recorder's ActionIDs, in order."""
    out: dict[str, list[AmiMessage]] = {}
    for message in iter_messages(capture("resync.ami")):
        if message.get("ActionID", "").startswith("rec-"):
            out.setdefault(message["ActionID"], []).append(message)
    return out


def shape(message: AmiMessage) -> list[tuple[str, str | None]]:
    return [(k, None if k in LIVE else v) for k, v in [("", message.kind), *message.headers]]


class RawAmi:
    """An AMI connection as the capture recorder had: bytes written, messages read as they come."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader, self.writer = reader, writer
        self.parser = AmiParser()
        self.inbox: list[AmiMessage] = []

    @classmethod
    async def login(cls, port: int) -> RawAmi:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        ami = cls(reader, writer)
        ami.writer.write(b"Action: Login\r\nUsername: cc\r\nSecret: s\r\nEvents: on\r\n\r\n")
        await ami.until(lambda m: m.kind == "response")
        return ami

    async def until(self, done) -> list[AmiMessage]:
        async with asyncio.timeout(5):
            while True:
                for i, message in enumerate(self.inbox):
                    if done(message):
                        taken, self.inbox = self.inbox[:i + 1], self.inbox[i + 1:]
                        return taken
                self.inbox.extend(self.parser.feed(await self.reader.read(65536)))

    async def action(self, name: str, action_id: str, last: str, **keys: str) -> list[AmiMessage]:
        """Send it and return every message carrying its ActionID, up to the one named `last`."""
        self.writer.write(encode_action(name, action_id, keys))
        taken = await self.until(lambda m: m.get("ActionID") == action_id and (m.name == last or m.kind == "response"
                                                                               and last == "response"))
        return [m for m in taken if m.get("ActionID") == action_id]


@pytest.fixture
async def live():
    """A simulator with one caller talking to agent1 and one waiting with music, as in resync."""
    async def script(session):
        await session.answer()
        await session.exec("StartMusicOnHold", "default")
        if session.caller_number.endswith("1"):
            await session.exec("Dial", "PJSIP/agent1,20,tT")
        await session.hung_up.wait()

    server = AgiServer(AgiSettings(host="127.0.0.1", port=0, command_timeout=30), {"inbound": script})
    await server.start()
    sim = SimulatedPbx("cc", "s", f"agi://127.0.0.1:{server.port}/inbound", auto_answer=0.05,
                       endpoints={"agent1", "agent2", "agent3", "agent4"})
    await sim.start("127.0.0.1", 0)
    talking = sim.place_call("+441632960401", "Jane Smith", "0800100100")
    waiting = sim.place_call("+441632960402", "Amira Khan", "0800100100")
    await asyncio.wait_for(talking.bridged.wait(), 5)
    async with asyncio.timeout(5):
        while not waiting.moh:
            await asyncio.sleep(0.01)
    ami = await RawAmi.login(sim.ami.port)
    yield sim, ami, talking
    ami.writer.close()
    await sim.close()
    await server.close()


def assert_like(simulated: list[AmiMessage], captured: list[AmiMessage]) -> None:
    """Same messages; items compared with the first captured item (all have the same headers)."""
    assert [m.name for m in simulated][:1] == [m.name for m in captured][:1]
    assert shape(simulated[0]) == shape(captured[0])
    assert shape(simulated[-1]) == shape(captured[-1])
    for item in simulated[1:-1]:
        assert shape(item) == shape(captured[1]), item.name


@pytest.mark.parametrize("action, captured_id, last", [
    ("CoreShowChannels", "rec-1", "CoreShowChannelsComplete"),
    ("BridgeList", "rec-2", "BridgeListComplete"),
    ("Status", "rec-3", "StatusComplete"),
])
async def test_list_actions_answer_as_asterisk_does(live, action, captured_id, last):
    sim, ami, _ = live
    simulated = await ami.action(action, "sim-1", last)

    assert_like(simulated, replies_in_capture()[captured_id])
    assert int(simulated[-1]["ListItems"]) == len(simulated) - 2
    assert len(simulated) - 2 == (len(sim.bridges) if action == "BridgeList" else len(sim.channels))


async def test_status_of_one_channel_and_getvar_answer_as_asterisk_does(live):
    _, ami, talking = live
    status = await ami.action("Status", "sim-6", "StatusComplete", Channel=talking.caller.name)
    getvar = await ami.action("Getvar", "sim-13", "response", Channel=talking.caller.name, Variable="QUEUENAME")

    captured = replies_in_capture()
    assert_like(status, captured["rec-6"])
    assert [k for k, _ in getvar[0].headers] == [k for k, _ in captured["rec-13"][0].headers]


@pytest.mark.parametrize("action, captured_id, keys", [
    ("BridgeInfo", "rec-7", {"BridgeUniqueid": "no-such-bridge"}),
    ("FlyToTheMoon", "rec-8", {"Destination": "Moon"}),
    ("Originate", "rec-9", {"Channel": "PJSIP/nosuchendpoint", "Context": "xfer", "Exten": "2001", "Priority": "1",
                            "Timeout": "5000"}),
])
async def test_refused_actions_get_asterisks_error(live, action, captured_id, keys):
    _, ami, _ = live
    reply = await ami.action(action, captured_id, "response", **keys)

    assert [shape(m) for m in reply] == [shape(m) for m in replies_in_capture()[captured_id]]


@pytest.mark.parametrize("captured_id, keys", [
    ("rec-10", {"Channel": "PJSIP/agent9", "Context": "xfer", "Exten": "2001", "Priority": "1", "Timeout": "5000",
                "Async": "true"}),
    ("rec-11", {"Channel": "Local/9999@nosuchcontext", "Application": "Wait", "Data": "1", "Async": "true"}),
])
async def test_async_originate_that_fails_answers_success_then_an_originate_response(live, captured_id, keys):
    _, ami, _ = live
    reply = await ami.action("Originate", captured_id, "OriginateResponse", **keys)

    captured = replies_in_capture()[captured_id]
    assert [m.name for m in reply] == [m.name for m in captured] == ["Success", "OriginateResponse"]
    assert reply[0].headers == captured[0].headers
    assert reply[1].headers == captured[1].headers  # Channel, Reason 0, Uniqueid <unknown>: all alike


async def test_an_unknown_action_also_raises_the_request_bad_format_security_event(live):
    _, ami, _ = live
    await ami.action("FlyToTheMoon", "sim-8", "response", Destination="Moon")
    event = (await ami.until(lambda m: m.name == "RequestBadFormat"))[-1]

    captured = next(m for m in iter_messages(capture("resync.ami")) if m.name == "RequestBadFormat")
    assert [k for k, _ in event.headers] == [k for k, _ in captured.headers]
    assert (event["RequestType"], event["AccountID"]) == ("Action: FlyToTheMoon", "cc")


async def test_a_wrong_secret_gets_the_bytes_asterisk_sent_and_the_socket_closed():
    """login-failure.ami: the banner, the error, then Asterisk hangs up. The capture's Login carried no
    ActionID, so neither does this one (with one, the reply repeats it first, as every reply does)."""
    sim = SimulatedPbx("cc", "s", "agi://127.0.0.1:9/inbound")
    await sim.start("127.0.0.1", 0)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", sim.ami.port)
        writer.write(b"Action: Login\r\nUsername: cc\r\nSecret: wrong\r\n\r\n")
        received = await asyncio.wait_for(reader.read(), 5)  # until the PBX closes the connection
        writer.close()
    finally:
        await sim.close()
    assert received == capture("login-failure.ami")
