"""The tracker, fed the bytes a real Asterisk sent."""

import pytest

from contactcentre.bus import Bus
from contactcentre.telephony.ami.protocol import iter_messages
from contactcentre.telephony.events import AgentLegAnswered, CallArrived, CallEnded
from contactcentre.telephony.tracker import CallTracker, device_of
from tests.captures import capture


def replay(name: str):
    bus = Bus()
    seen = {CallArrived: [], CallEnded: [], AgentLegAnswered: []}
    for kind, found in seen.items():
        bus.subscribe(kind, found.append)
    tracker = CallTracker(bus, clock=lambda: 0.0)
    for message in iter_messages(capture(name)):
        if message.kind == "event":
            tracker.handle(message)
    return tracker, seen


@pytest.mark.parametrize(("name", "calls"), [("queue-basic.ami", 8), ("agi-ivr.ami", 4)])
def test_each_inbound_call_is_one_call_keyed_by_linkedid_and_ends(name, calls):
    tracker, seen = replay(name)
    assert len(seen[CallArrived]) == calls
    assert {e.call_id for e in seen[CallEnded]} == {e.call_id for e in seen[CallArrived]}
    assert tracker.calls == {}
    assert all(e.channel.startswith("PJSIP/carrier-") for e in seen[CallArrived])


def test_agent_answers_are_seen_on_the_agents_device():
    _, seen = replay("queue-basic.ami")
    devices = sorted(e.device for e in seen[AgentLegAnswered])
    assert devices == ["PJSIP/agent1", "PJSIP/agent1", "PJSIP/agent2", "PJSIP/agent2", "PJSIP/agent2"]


def test_device_names():
    assert device_of("PJSIP/agent1-0000002a") == "PJSIP/agent1"
    assert device_of("PJSIP/carrier-00000000") == "PJSIP/carrier"
    assert device_of("Local/2003@xfer-00000000;1") == "Local/2003@xfer"
