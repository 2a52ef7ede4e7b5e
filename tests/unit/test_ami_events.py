"""Typed AMI events: what Asterisk sent, as read-only typed views; anything else kept whole."""

import pytest

from contactcentre.telephony.ami import events as ev
from contactcentre.telephony.ami.protocol import iter_messages, parse_message
from tests.captures import AMI_CAPTURES, capture


def typed(name: str) -> list:
    return [ev.decode(m) for m in iter_messages(capture(name)) if m.kind == "event"]


@pytest.mark.parametrize("name", AMI_CAPTURES)
def test_every_captured_event_decodes_to_its_model_or_to_unknown(name):
    for event in typed(name):
        if isinstance(event, ev.UnknownEvent):
            assert event.name not in ev.KNOWN_EVENTS or event.name == "AgentComplete"
        else:
            assert type(event).__name__ in ev.KNOWN_EVENTS


def test_channel_events_carry_the_channel_block():
    newchannel = next(e for e in typed("queue-basic.ami") if isinstance(e, ev.Newchannel))
    assert newchannel.channel.name.startswith("PJSIP/carrier-")
    assert newchannel.channel.state == 4 and newchannel.channel.caller_num.startswith("+")
    assert newchannel.channel.connected_num == ""  # Asterisk's "<unknown>" is no number


def test_transfers_and_hold_are_typed():
    events = typed("transfers-hold.ami")
    blind = next(e for e in events if isinstance(e, ev.BlindTransfer))
    assert (blind.context, blind.extension) == ("xfer", "2003")
    assert blind.transferer.name.startswith("PJSIP/agent1-")
    attended = next(e for e in events if isinstance(e, ev.AttendedTransfer))
    assert attended.dest_type == "Bridge" and attended.orig_transferer is not None
    holds = [e for e in events if isinstance(e, ev.Hold)]
    assert "default" in {h.music_class for h in holds} and "" in {h.music_class for h in holds}
    assert any(isinstance(e, ev.LocalBridge) for e in events)


def test_an_event_missing_its_channel_is_kept_as_unknown_not_crashed_on():
    message = parse_message("Event: Hangup\r\nCause: 16")
    event = ev.decode(message)
    assert isinstance(event, ev.UnknownEvent) and event.headers == (("Event", "Hangup"), ("Cause", "16"))
    garbled = ev.decode(parse_message("Event: Newstate\r\nUniqueid: 1.1\r\nChannelState: up!"))
    assert isinstance(garbled, ev.Newstate) and garbled.channel.state == 0


@pytest.mark.parametrize("name", AMI_CAPTURES)
def test_a_channel_block_read_in_one_pass_equals_it_read_field_by_field(name):
    prefixes = ("", "Dest", "Transferee", "OrigTransferer", "SecondTransferer", "TransferTarget", "LocalOne",
                "LocalTwo")
    blocks = 0
    for message in iter_messages(capture(name)):
        for prefix in prefixes if message.kind == "event" else ():
            snap = ev.snapshot(message, prefix)
            if snap is not None:
                blocks += 1
                assert snap.as_tuple() == tuple(getattr(snap, field) for field in ev.ChannelSnapshot.FIELDS)
                assert snap.uniqueid == message.get(f"{prefix}Uniqueid")
    assert blocks > 0 or b"Uniqueid: " not in capture(name)


def test_a_channel_block_out_of_asterisks_order_is_still_read_whole():
    message = parse_message("Event: Newchannel\r\nUniqueid: 1.5\r\nChannel: PJSIP/x-1\r\nChannelState: 4\r\n"
                            "CallerIDNum: <unknown>\r\nLinkedid: 1.4")
    snap = ev.decode(message).channel
    assert snap.as_tuple() == ("PJSIP/x-1", "1.5", "1.4", 4, "", "", "", "", "", "", 0)


def test_a_channel_snapshot_cannot_be_changed():
    snap = ev.decode(parse_message("Event: Newstate\r\nUniqueid: 1.1\r\nChannelState: 6")).channel
    with pytest.raises(AttributeError):
        snap.uniqueid = "2.2"
    assert snap.state == 6 and snap == ev.snapshot(parse_message("Event: Hangup\r\nUniqueid: 1.1\r\nChannelState: 6"))
    assert snap != ev.snapshot(parse_message("Event: Hangup\r\nUniqueid: 1.1\r\nChannelState: 5"))


def test_an_event_reads_each_field_from_its_message_as_the_header_says():
    event = ev.decode(parse_message("Event: Hangup\r\nChannel: PJSIP/a-1\r\nUniqueid: 1.1\r\nCause: 17\r\n"
                                    "Cause-txt: User busy"))
    assert (event.cause, event.cause_text, event.channel.name) == (17, "User busy", "PJSIP/a-1")
    assert ev.decode(parse_message("Event: Hangup\r\nUniqueid: 1.1\r\nCause: busy")).cause == 0  # not a number
    assert ev.decode(parse_message("Event: Hangup\r\nUniqueid: 1.1")).cause_text == ""  # absent


def test_an_event_cannot_be_changed_and_equals_one_with_the_same_fields():
    text = "Event: BridgeEnter\r\nBridgeUniqueid: b1\r\nBridgeNumChannels: 2\r\nUniqueid: 1.1\r\nChannel: PJSIP/a-1"
    event, again = ev.decode(parse_message(text)), ev.decode(parse_message(text))
    with pytest.raises(AttributeError):
        event.bridge_id = "b2"
    assert event == again and hash(event) == hash(again) and event.as_dict()["num_channels"] == 2
    assert event != ev.decode(parse_message(text.replace("b1", "b2")))
    assert event != ev.decode(parse_message(text.replace("BridgeEnter", "BridgeLeave")))
    assert repr(event).startswith("BridgeEnter(channel=ChannelSnapshot(name='PJSIP/a-1'")


@pytest.mark.parametrize("name", AMI_CAPTURES)
def test_every_field_of_every_captured_event_is_its_header(name):
    for message in iter_messages(capture(name)):
        event = ev.decode(message) if message.kind == "event" else None
        if event is None or isinstance(event, ev.UnknownEvent):
            continue
        for field in type(event).FIELDS:
            header = vars(type(event)).get(field)
            if isinstance(header, ev.Header):
                raw = message.get(header.key)
                assert getattr(event, field) == (header.convert(raw) if header.convert else raw or "")
            else:  # a channel block: its prefix's Uniqueid is the block's
                prefix = dict(type(event).BLOCKS)[field]
                block = getattr(event, field)
                assert (block.uniqueid if block else None) == message.get(prefix + "Uniqueid")


# Events the captures lack (no restart, reload or contact change was recorded), as Asterisk 22 writes
# them (its AMI event documentation: the headers and their order).
PBX_EVENTS = [
    ("Event: Shutdown\r\nPrivilege: system,all\r\nShutdown: Cleanly\r\nRestart: True",
     ev.Shutdown, {"shutdown": "Cleanly", "restart": True}),
    ("Event: Shutdown\r\nPrivilege: system,all\r\nShutdown: Uncleanly\r\nRestart: False",
     ev.Shutdown, {"shutdown": "Uncleanly", "restart": False}),
    ("Event: Reload\r\nPrivilege: system,all\r\nModule: res_pjsip.so\r\nStatus: 0",
     ev.Reload, {"module": "res_pjsip.so", "status": "0"}),
    ("Event: ContactStatus\r\nPrivilege: system,all\r\nURI: sip:agent1@192.0.2.21:5060\r\n"
     "ContactStatus: Reachable\r\nAOR: agent1\r\nEndpointName: agent1\r\nRoundtripUsec: 1850",
     ev.ContactStatus, {"uri": "sip:agent1@192.0.2.21:5060", "status": "Reachable", "aor": "agent1",
                        "endpoint": "agent1", "roundtrip_usec": 1850}),
    ("Event: ContactStatus\r\nPrivilege: system,all\r\nURI: sip:agent2@192.0.2.22:5060\r\n"
     "ContactStatus: Removed\r\nAOR: agent2\r\nEndpointName: agent2\r\nRoundtripUsec: N/A",
     ev.ContactStatus, {"uri": "sip:agent2@192.0.2.22:5060", "status": "Removed", "aor": "agent2",
                        "endpoint": "agent2", "roundtrip_usec": 0}),
    ("Event: UserEvent\r\nPrivilege: user,all\r\nChannel: PJSIP/carrier-00000004\r\nUniqueid: 1795621176.9\r\n"
     "Linkedid: 1795621176.9\r\nUserEvent: SurveyDone\r\nScore: 5",
     ev.UserEvent, {"user_event": "SurveyDone"}),
]


@pytest.mark.parametrize(("text", "cls", "fields"), PBX_EVENTS, ids=[f"{c.__name__}-{i}" for i, (_, c, _) in enumerate(PBX_EVENTS)])
def test_events_of_the_pbx_itself_are_typed(text, cls, fields):
    event = ev.decode(parse_message(text))
    assert type(event) is cls
    assert {name: getattr(event, name) for name in fields} == fields


def test_a_user_event_keeps_its_own_headers_and_its_channel_when_it_has_one():
    event = ev.decode(parse_message(PBX_EVENTS[-1][0]))
    assert ("Score", "5") in event.headers and event.channel.uniqueid == "1795621176.9"
    bare = ev.decode(parse_message("Event: UserEvent\r\nPrivilege: user,all\r\nUserEvent: Tick"))
    assert bare.channel is None and bare.user_event == "Tick"  # sent by an AMI client: no channel
