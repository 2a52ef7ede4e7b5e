import re
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contactcentre.telephony.ami.events import KNOWN_EVENTS
from contactcentre.telephony.ami.protocol import (
    MAX_MESSAGE_BYTES,
    AmiParser,
    EventFilter,
    encode_action,
    iter_messages,
    parse_message,
)
from tests.captures import AMI_CAPTURES, capture


def test_every_capture_is_found():
    assert len(AMI_CAPTURES) == 8


@pytest.mark.parametrize("name", AMI_CAPTURES)
def test_every_capture_parses_into_banner_responses_and_events(name):
    data = capture(name)
    messages = list(iter_messages(data))
    kinds = Counter(m.kind for m in messages)
    assert messages[0].kind == "banner" and messages[0].name == "Asterisk Call Manager/11.0.0"
    assert kinds["unknown"] == 0
    assert kinds["event"] + kinds["response"] + 1 == len(messages)
    assert kinds["event"] == data.count(b"\r\nEvent: ") + data.startswith(b"Event: ")


def test_empty_values_are_kept():
    newchannel = next(m for m in iter_messages(capture("queue-basic.ami")) if m.name == "Newchannel")
    assert ("AccountCode", "") in newchannel.headers
    assert newchannel.get("AccountCode") == ""


def test_repeated_headers_are_all_kept():
    response = next(m for m in iter_messages(capture("resync.ami"))
                    if m.kind == "response" and len(m.get_all("Output")) > 1)
    outputs = response.get_all("Output")
    assert outputs[0].startswith("support has")
    assert len(outputs) > 3


def test_error_response_keeps_asterisks_message():
    errors = [m for m in iter_messages(capture("resync.ami")) if m.kind == "response" and m.name == "Error"]
    assert "Invalid/unknown command: FlyToTheMoon. Use Action: ListCommands to show available commands." in [
        m.get("Message") for m in errors]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=len(capture("agi-ivr.ami")) - 1), max_size=40))
def test_any_split_of_a_capture_parses_to_the_same_messages(cuts):
    data = capture("agi-ivr.ami")
    whole = [(m.kind, m.name, m.headers) for m in iter_messages(data)]
    parser = AmiParser()
    pieces, last = [], 0
    for cut in sorted(set(cuts)):
        pieces.append(data[last:cut])
        last = cut
    pieces.append(data[last:])
    split = [(m.kind, m.name, m.headers) for piece in pieces for m in parser.feed(piece)]
    assert split == whole[: len(split)] and len(whole) - len(split) <= 1


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=4096))
def test_random_bytes_never_crash_the_parser(data):
    parser = AmiParser()
    for message in parser.feed(data):
        assert message.kind in ("banner", "event", "response", "action", "unknown")


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(min_value=0, max_value=len(capture("queue-basic.ami")) - 1),
                          st.integers(min_value=0, max_value=255)), min_size=1, max_size=50),
       st.lists(st.integers(min_value=1, max_value=4096), min_size=1, max_size=30))
def test_mutated_captures_split_at_random_never_crash_and_keep_the_rest(mutations, sizes):
    data = bytearray(capture("queue-basic.ami"))
    for position, value in mutations:
        data[position] = value
    parser, offset, messages = AmiParser(), 0, []
    for size in sizes * (len(data) // sum(sizes) + 1):
        messages += parser.feed(bytes(data[offset:offset + size]))
        offset += size
        if offset >= len(data):
            break
    # a flipped byte can spoil the message it lands in (or join two), never the stream
    assert len(messages) >= data.count(b"\r\n\r\n") - len(mutations) * 2


def test_a_message_without_end_is_cut_at_the_limit_and_counted():
    parser = AmiParser(expect_banner=False)
    assert parser.feed(b"Event: Flood\r\nX: " + b"y" * (MAX_MESSAGE_BYTES + 10)) == []
    assert parser.oversized == 1
    assert [m.name for m in parser.feed(b"\r\n\r\nEvent: Next\r\n\r\n")] == ["Next"]


def test_invalid_utf8_is_replaced_and_counted():
    parser = AmiParser(expect_banner=False)
    (message,) = parser.feed(b"Event: Newchannel\r\nCallerIDName: Ren\xe9\r\n\r\n")
    assert message.get("CallerIDName") == "Ren\ufffd"
    assert parser.undecodable == 1


def test_actions_are_written_by_the_asterisk_ami_package_with_our_action_id():
    wire = encode_action("PJSIPNotify", "cc-1", {"Endpoint": "agent1"}, {"Event": "talk"})
    assert wire == b"Action: PJSIPNotify\r\nActionID: cc-1\r\nEndpoint: agent1\r\nVariable: Event=talk\r\n\r\n"


TRACKED = {"Newchannel", "Newstate", "Hangup", "BridgeEnter", "DialBegin", "UserEvent"}


def _pieces(data: bytes, cuts: list[int]) -> list[bytes]:
    pieces, last = [], 0
    for cut in sorted(set(cuts)):
        pieces.append(data[last:cut])
        last = cut
    return [*pieces, data[last:]]


@pytest.mark.parametrize("name", AMI_CAPTURES)
@settings(max_examples=15, deadline=None)
@given(cuts=st.lists(st.integers(min_value=1, max_value=200_000), max_size=30))
def test_a_filtered_read_gives_the_wanted_events_and_every_other_message_as_a_full_read_does(name, cuts):
    data = capture(name)
    full = list(iter_messages(data))
    parser, wanted = AmiParser(), EventFilter(TRACKED, ignore=KNOWN_EVENTS)
    got = [m for piece in _pieces(data, [c % len(data) for c in cuts]) for m in parser.feed(piece, wanted)]
    expected = [m for m in full if m.kind != "event" or m.name in TRACKED]
    assert [(m.kind, m.name, m.headers) for m in got] == [(m.kind, m.name, m.headers) for m in expected][:len(got)]
    assert len(expected) - len(got) <= 1  # at most the last message, if the capture stops without its blank line
    unknown = Counter(m.name.encode() for m in full if m.kind == "event" and m.name not in KNOWN_EVENTS)
    assert parser.skipped == unknown  # events of no known kind are counted by name; known ones we skip are not


def test_a_filtered_read_keeps_stray_blank_lines_garbage_and_one_line_events_apart():
    parser, wanted = AmiParser(expect_banner=False), EventFilter({"Hangup"}, ignore={"VarSet"})
    stream = (b"Event: VarSet\r\nVariable: x\r\n\r\n\r\n\r\nEvent: Hangup\r\nUniqueid: 1.1\r\n\r\n"
              b"garbage line\r\n\r\nEvent: RTCPSent\r\n\r\nEvent: Hangup\r\n\r\n")
    messages = parser.feed(stream, wanted)
    assert [(m.kind, m.name) for m in messages] == [("event", "Hangup"), ("unknown", ""), ("event", "Hangup")]
    assert messages[0].get("Uniqueid") == "1.1"
    assert parser.skipped == Counter({b"RTCPSent": 1})


@pytest.mark.parametrize("name", AMI_CAPTURES)
def test_a_header_found_in_the_text_is_the_one_splitting_finds(name):
    for message in iter_messages(capture(name)):
        if message.kind == "banner":
            continue
        lazy = parse_message(message.text)
        keys = {key for key, _ in message.headers} | {"NoSuchHeader", "uniqueid", "ACTIONID"}
        assert {key: lazy.get(key) for key in keys} == {key: message.get(key) for key in keys}


def test_a_header_written_another_way_is_still_found():
    message = parse_message("Event: X\r\nCause:16\r\nuniqueid: 1.2\r\nEmpty:")
    assert (message.get("Cause"), message.get("Uniqueid"), message.get("Empty"), message.get("Event")) == (
        "16", "1.2", "", "X")


def test_a_message_built_from_headers_answers_from_them():
    from contactcentre.telephony.ami.protocol import AmiMessage

    message = AmiMessage("event", "Newstate", [("Event", "Newstate"), ("Uniqueid", "1.1"), ("ChannelState", "6")])
    assert (message.get("Uniqueid"), message.get("channelstate"), message.get("Linkedid")) == ("1.1", "6", None)


@given(st.sets(st.binary(min_size=1, max_size=6), min_size=1, max_size=12), st.binary(max_size=7))
def test_the_ignored_names_pattern_matches_exactly_those_names(names, other):
    from contactcentre.telephony.ami.protocol import _alternation

    pattern = re.compile(b"(?:" + _alternation(names) + rb")\Z")
    for name in names | {other}:
        assert bool(pattern.match(name)) == (name in names)


def test_the_first_event_of_each_kind_left_unparsed_is_handed_over_whole_the_rest_only_counted():
    firsts = []
    parser = AmiParser(expect_banner=False, on_new_kind=lambda name, text: firsts.append((name, text)))
    wanted = EventFilter(parse={"Newchannel"}, ignore={"VarSet"})
    rtcp = b"Event: RTCPSent\r\nPrivilege: reporting,all\r\nSSRC: 0x%d\r\n\r\n"
    parser.feed(rtcp % 1 + b"Event: VarSet\r\nVariable: X\r\n\r\n" + rtcp % 2, wanted)
    parser.feed(rtcp % 3 + b"Event: Cdr\r\nDuration: 5\r\n\r\n", wanted)
    assert firsts == [("RTCPSent", "Event: RTCPSent\r\nPrivilege: reporting,all\r\nSSRC: 0x1"),
                      ("Cdr", "Event: Cdr\r\nDuration: 5")]
    assert parser.skipped == {b"RTCPSent": 3, b"Cdr": 1}  # VarSet is modelled: ignored, not counted
