"""The AMI client and FastAGI server against the simulator, over real sockets."""

import asyncio

import aiohttp
import pytest

from contactcentre.config import AgiSettings, AmiSettings
from contactcentre.telephony.agi.server import AgiServer
from contactcentre.telephony.ami.client import AmiClient, AmiError, LinkStatus
from contactcentre.telephony.simulator.pbx import SimulatedPbx
from tests.support import until


@pytest.fixture
async def pbx():
    sim = SimulatedPbx("cc", "s3cret", "agi://127.0.0.1:9/inbound")
    await sim.start("127.0.0.1", 0)
    yield sim
    await sim.close()


def ami_settings(port: int, secret: str = "s3cret") -> AmiSettings:
    return AmiSettings(host="127.0.0.1", port=port, username="cc", secret=secret, connect_timeout=2,
                       action_timeout=0.5, reconnect_max_delay=0.5, ping_interval=0.2)


async def test_login_failure_gives_a_clear_status_and_line(pbx, caplog):
    client = AmiClient(ami_settings(pbx.ami.port, secret="wrong"))
    await client.start()
    assert client.status is LinkStatus.LOGIN_FAILED
    assert "AMI login to 127.0.0.1" in client.last_error and "Authentication failed" in client.last_error
    await client.close()


async def test_refused_port_is_reported_unreachable():
    client = AmiClient(ami_settings(1))
    await client.start()
    assert client.status is LinkStatus.UNREACHABLE
    assert "unreachable" in client.last_error
    await client.close()


async def test_unknown_action_raises_with_asterisks_message(pbx):
    client = AmiClient(ami_settings(pbx.ami.port))
    await client.start()
    with pytest.raises(AmiError, match="Invalid/unknown command: FlyToTheMoon"):
        await client.send("FlyToTheMoon", {"Destination": "Moon"})
    assert (await client.send("Ping")).get("Ping") == "Pong"
    await client.close()


async def test_list_action_returns_every_item_up_to_complete(pbx):
    client = AmiClient(ami_settings(pbx.ami.port))
    await client.start()
    pbx.place_call("+441632960101", "Jane Smith")  # its AGI server is down: the call still exists a moment
    pbx.place_call("+441632960102", "John Doe")
    items = await client.send_list("CoreShowChannels")
    assert sorted(i.get("CallerIDNum") for i in items) == ["+441632960101", "+441632960102"]
    await client.close()


async def test_the_client_reconnects_when_the_pbx_drops_the_link(pbx):
    client = AmiClient(ami_settings(pbx.ami.port))
    connects = []

    async def connected():
        connects.append(client.status)

    client.on_connected(connected)
    await client.start()
    for session in list(pbx.ami.sessions):
        session.close()
    async with asyncio.timeout(5):
        while len(connects) < 2:
            await asyncio.sleep(0.02)
    assert client.status is LinkStatus.CONNECTED
    await client.close()


async def test_a_pbx_that_stops_answering_is_reported_and_the_link_comes_back(pbx, caplog):
    client = AmiClient(ami_settings(pbx.ami.port))
    await client.start()
    pbx.ami.frozen = True
    async with asyncio.timeout(5):
        while client.status is not LinkStatus.NOT_ANSWERING:
            await asyncio.sleep(0.02)
    assert "stopped answering" in client.last_error
    assert [r.message for r in caplog.records].count(client.last_error) == 1
    async with asyncio.timeout(10):  # it reconnects; the PBX takes the connection and leaves the Login unanswered
        while "did not answer the Login" not in client.last_error:
            await asyncio.sleep(0.02)
    assert client.status is LinkStatus.NOT_ANSWERING  # still there and hung, not unreachable
    errors = [r.message for r in caplog.records if r.levelname == "ERROR" and r.name == "contactcentre.telephony.ami.client"]
    assert len(errors) == 1 and "stopped answering" in errors[0]  # the same problem: one line
    pbx.ami.frozen = False
    async with asyncio.timeout(5):
        while client.status is not LinkStatus.CONNECTED:
            await asyncio.sleep(0.02)
    await client.close()


async def test_fastagi_refuses_garbage_and_counts_it():
    server = AgiServer(AgiSettings(host="127.0.0.1", port=0, command_timeout=2), {})
    await server.start()
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    await writer.drain()
    assert await asyncio.wait_for(reader.read(), 3) == b""
    assert server.protocol_errors == 1
    writer.close()
    await server.close()


async def test_fastagi_session_sees_the_hangup_notice_and_commands_fail_cleanly():
    got = asyncio.get_running_loop().create_future()

    async def script(session):
        await session.answer()
        await session.hung_up.wait()
        got.set_result(await session.get_variable("DIALSTATUS"))

    server = AgiServer(AgiSettings(host="127.0.0.1", port=0, command_timeout=2), {"inbound": script})
    await server.start()
    sim = SimulatedPbx("cc", "s", f"agi://127.0.0.1:{server.port}/inbound")
    await sim.start("127.0.0.1", 0)
    call = sim.place_call("+441632960101", "Jane Smith")
    await asyncio.sleep(0.2)
    call.caller_hangup()
    assert await asyncio.wait_for(got, 3) is None
    await asyncio.wait_for(call.finished.wait(), 3)
    await sim.close()
    await server.close()


async def test_a_host_that_does_not_exist_is_reported_unreachable():
    client = AmiClient(AmiSettings(host="pbx.invalid", port=5038, username="cc", secret="x", connect_timeout=2))
    await client.start()
    assert client.status is LinkStatus.UNREACHABLE
    assert "pbx.invalid:5038" in client.last_error
    await client.close()


async def test_health_reports_a_refused_login_to_a_real_pbx(pbx, aiohttp_client, tmp_path):
    from contactcentre.app import create_app
    from tests.support import sqlite_url, stack_settings

    settings = stack_settings(sqlite_url(tmp_path), pbx={"mode": "asterisk"},
                              ami={"port": pbx.ami.port, "username": "cc", "secret": "wrong", "connect_timeout": 2.0})
    client = await aiohttp_client(create_app(settings))
    response = await client.get("/health")
    body = await response.json()
    assert response.status == 503
    assert body["ami"] == "login failed" and "Authentication failed" in body["ami_error"]


async def test_events_no_handler_wants_are_counted_unparsed_and_list_answers_still_arrive(pbx, caplog):
    caplog.set_level("INFO", logger="contactcentre.telephony.ami.client")
    client = AmiClient(ami_settings(pbx.ami.port))
    seen = []
    client.add_handler(lambda message: seen.append(message.name), events={"Newchannel"})
    await client.start()
    pbx.place_call("+441632960101", "Jane Smith")
    async with asyncio.timeout(5):
        while "QueueMemberStatus" not in client.skipped_events:  # a kind we have no model of
            await asyncio.sleep(0.02)
    # The first of the kind is kept whole, in the log; any others are only counted.
    kept = [r.getMessage() for r in caplog.records if "no model of: QueueMemberStatus" in r.getMessage()]
    assert len(kept) == 1 and "Event: QueueMemberStatus\\r\\nPrivilege: agent,all\\r\\nQueue: " in kept[0]
    # Only Newchannel reaches the handler (the caller's, and the queue member's phone it may ring by now).
    assert seen and set(seen) == {"Newchannel"}
    pbx.place_call("+441632960102", "John Doe")
    items = await client.send_list("CoreShowChannels")  # its items are events too: never skipped
    assert "+441632960102" in [i.get("CallerIDNum") for i in items]
    await client.close()


async def test_a_handler_added_while_events_flow_gets_its_events_from_then_on(pbx):
    client = AmiClient(ami_settings(pbx.ami.port))
    first, second = [], []
    client.add_handler(lambda message: first.append(message.name), events={"Newchannel"})
    await client.start()
    pbx.place_call("+441632960101", "Jane Smith")
    async with asyncio.timeout(5):
        while not first:
            await asyncio.sleep(0.02)
    client.add_handler(lambda message: second.append(message.name), events={"Newchannel", "Hangup"})
    pbx.place_call("+441632960102", "John Doe")
    async with asyncio.timeout(5):
        while "Newchannel" not in second:
            await asyncio.sleep(0.02)
    assert set(first) == {"Newchannel"} and set(second) <= {"Newchannel", "Hangup"}
    assert len(first) >= len(second)  # the first handler saw the second call's channels too
    await client.close()


async def test_health_counts_what_the_pbx_sent_that_could_not_be_used_across_reconnects(stack):
    sim, services = stack.sim, stack.services

    async def health() -> dict:
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{stack.base_url}health") as response:
                return (await response.json())["telephony"]

    sim.place_call("+441632960101", "Jane Smith")
    # A kind of event we have no model of, and an event the tracker reads that is not UTF-8.
    sim.ami.broadcast("QueueMemberRinginuse", [("Queue", "support"), ("Interface", "PJSIP/agent1")])
    for session in sim.ami.sessions:
        session.transport.write(b"Event: Hangup\r\nPrivilege: call,all\r\nChannel: PJSIP/gone-00000009\r\n"
                                b"Uniqueid: 9.9\r\nLinkedid: 9.9\r\nCause: 16\r\nCause-txt: Norm\xe4l\r\n\r\n")
    await services.ami.send("Ping")  # everything sent before it has been read
    before = await health()
    assert before["unknown_events"]["QueueMemberRinginuse"] == 1
    assert (before["undecodable"], before["oversized"], before["agi_protocol_errors"]) == (1, 0, 0)
    assert before["ami_events"] > 0

    for session in list(sim.ami.sessions):  # the link drops and comes back: the counts are since start
        session.close()
    await until(lambda: services.ami.status is not LinkStatus.CONNECTED)
    await until(lambda: services.ami.status is LinkStatus.CONNECTED)
    after = await health()
    assert after["unknown_events"]["QueueMemberRinginuse"] == 1 and after["undecodable"] == 1
    assert after["ami_events"] >= before["ami_events"]
