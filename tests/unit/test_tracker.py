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


def test_transfers_give_one_leg_per_agent_who_talked_to_the_caller_with_hold_time():
    bus = Bus()
    ended = []
    bus.subscribe(CallEnded, ended.append)
    clock = [0.0]
    tracker = CallTracker(bus, clock=lambda: clock[0])
    for message in iter_messages(capture("transfers-hold.ami")):
        if message.kind == "event":
            clock[0] += 1.0  # the capture has no times: one second an event keeps durations comparable
            tracker.handle(message)
    legs = [[(device, hold > 0) for device, _, _, _, hold in call.legs] for call in ended]
    assert legs == [
        [("PJSIP/agent1", False), ("PJSIP/agent3", False)],  # blind transfer
        [("PJSIP/agent2", False), ("PJSIP/agent4", False)],  # caller redirected
        [("PJSIP/agent1", True), ("PJSIP/agent3", False)],  # attended transfer: Asterisk holds the transferer
        [("PJSIP/agent2", True)],  # consultation cancelled: agent4 never talked to the caller
        [("PJSIP/agent1", True)],  # the phone put the caller on hold
    ]
    for call in ended:
        for _, joined, left, talk, hold in call.legs:
            assert left is not None and joined < left and 0 < talk <= left - joined and hold >= 0


def placed_call_events(customer_answers: bool) -> list[tuple[str, list[tuple[str, str]]]]:
    """What the PBX sends for an Originate to agent1 whose dialplan dials a customer (the simulator's
    order, which is Asterisk's: Newchannel Down, Ringing, Up, then the Dial of the customer)."""
    agent = [("Channel", "PJSIP/agent1-00000001"), ("Uniqueid", "cc-out-1"), ("Linkedid", "cc-out-1"),
             ("CallerIDNum", "+441632960000")]
    customer = [("Channel", "PJSIP/carrier-00000002"), ("Uniqueid", "2"), ("Linkedid", "cc-out-1"),
                ("CallerIDNum", "+441632960101")]
    dest = [("Dest" + k, v) for k, v in customer]
    events = [("Newchannel", [*agent, ("ChannelState", "0")]), ("Newstate", [*agent, ("ChannelState", "5")]),
              ("Newstate", [*agent, ("ChannelState", "6")]), ("Newchannel", [*customer, ("ChannelState", "0")]),
              ("DialBegin", [*agent, *dest, ("DialString", "+441632960101@carrier")]),
              ("Newstate", [*customer, ("ChannelState", "5")])]
    if customer_answers:
        events += [("Newstate", [*customer, ("ChannelState", "6")]),
                   ("DialEnd", [*agent, *dest, ("DialStatus", "ANSWER")]),
                   ("BridgeEnter", [*customer, ("BridgeUniqueid", "b1")]),
                   ("BridgeEnter", [*agent, ("BridgeUniqueid", "b1")]),
                   ("BridgeLeave", [*customer, ("BridgeUniqueid", "b1")]),
                   ("BridgeLeave", [*agent, ("BridgeUniqueid", "b1")])]
    else:
        events += [("DialEnd", [*agent, *dest, ("DialStatus", "BUSY")])]
    return events + [("Hangup", [*customer, ("Cause", "16")]), ("Hangup", [*agent, ("Cause", "16")])]


@pytest.mark.parametrize("customer_answers", [True, False])
def test_a_placed_call_follows_the_agents_leg_and_the_customer_it_dials(customer_answers):
    from contactcentre.telephony.ami.protocol import parse_message
    from contactcentre.telephony.events import AgentLegEnded, AgentLegRinging, OutboundDialEnded

    bus = Bus()
    seen = []
    for kind in (CallArrived, AgentLegRinging, AgentLegAnswered, OutboundDialEnded, AgentLegEnded, CallEnded):
        bus.subscribe(kind, seen.append)
    clock = [0.0]
    tracker = CallTracker(bus, clock=lambda: clock[0])
    for name, headers in placed_call_events(customer_answers):
        clock[0] += 1.0
        tracker.handle(parse_message("\r\n".join(f"{k}: {v}" for k, v in [("Event", name), *headers])))

    assert [(type(e).__name__, getattr(e, "device", getattr(e, "status", ""))) for e in seen[:-1]] == [
        ("AgentLegRinging", "PJSIP/agent1"), ("AgentLegAnswered", "PJSIP/agent1"),
        ("OutboundDialEnded", "ANSWER" if customer_answers else "BUSY"), ("AgentLegEnded", "PJSIP/agent1")]
    ended = seen[-1]
    assert isinstance(ended, CallEnded) and ended.call_id == "cc-out-1"
    assert [(device, talk) for device, _, _, talk, _ in ended.legs] == ([("PJSIP/agent1", 1.0)] if customer_answers
                                                                         else [])
    assert tracker.stats.calls == 0  # the day's inbound figures do not count it


def block(name: str, uniqueid: str, linkedid: str, state: int) -> str:
    return (f"Channel: {name}\r\nChannelState: {state}\r\nCallerIDNum: +441632960101\r\nCallerIDName: Jane\r\n"
            f"Uniqueid: {uniqueid}\r\nLinkedid: {linkedid}")


def test_a_resync_takes_channels_out_of_bridges_they_left_while_the_link_was_down():
    from contactcentre.telephony.ami.protocol import parse_message

    clock = [0.0]
    tracker = CallTracker(Bus(), clock=lambda: clock[0])
    caller, agent = block("PJSIP/carrier-00000001", "1.1", "1.1", 4), block("PJSIP/agent1-00000002", "1.2", "1.1", 6)
    for text in (f"Event: Newchannel\r\n{caller}", f"Event: Newchannel\r\n{agent}",
                 f"Event: BridgeEnter\r\nBridgeUniqueid: b1\r\n{caller}", f"Event: BridgeEnter\r\nBridgeUniqueid: b1\r\n{agent}"):
        clock[0] += 1.0
        tracker.handle(parse_message(text))
    leg = tracker.calls["1.1"].legs["PJSIP/agent1"]
    assert leg.connected_since == 4.0  # talking since both were in the bridge

    # The link drops; the agent puts the caller in the hold context (both leave the bridge); the link is back.
    clock[0] = 10.0
    tracker.reconcile([parse_message(f"Event: CoreShowChannel\r\nActionID: a1\r\n{caller}\r\nBridgeId: "),
                       parse_message(f"Event: CoreShowChannel\r\nActionID: a1\r\n{agent}\r\nBridgeId: ")])
    assert tracker._bridge_of == {} and tracker._bridges == {}
    assert (leg.connected_since, leg.talk_seconds) == (None, 6.0)  # stopped talking when the PBX said so

    clock[0] = 12.0  # back together in another bridge: talking again from then
    tracker.reconcile([parse_message(f"Event: CoreShowChannel\r\nActionID: a2\r\n{caller}\r\nBridgeId: b2"),
                       parse_message(f"Event: CoreShowChannel\r\nActionID: a2\r\n{agent}\r\nBridgeId: b2")])
    assert tracker._bridges == {"b2": {"1.1", "1.2"}} and leg.connected_since == 12.0

    clock[0] = 15.0  # the PBX lists no bridge b2 any more (gone between its two answers): nor do we
    tracker.forget_bridges([parse_message("Event: BridgeListItem\r\nActionID: a3\r\nBridgeUniqueid: b9")])
    assert tracker._bridges == {} and (leg.connected_since, leg.talk_seconds) == (None, 9.0)
