"""Replay of real captures and of our own recordings: the day's figures match the truth."""

import json

import pytest

from contactcentre.cli import main
from contactcentre.telephony.recorder import FlightRecorder, RecordingError, read_chunks, replay
from tests.captures import CAPTURES, capture

SCENARIOS = [
    (["queue-basic.ami"], "queue-basic"),
    (["agi-ivr.ami"], "agi-ivr"),
    (["transfers-hold.ami"], "transfers-hold"),
    (["queue-localmembers.ami"], "queue-localmembers"),
    (["agent-states.ami"], "agent-states"),
    (["resync.ami", "resync-after.ami"], "resync"),
]


def truth(name: str) -> dict:
    return json.loads(capture(f"{name}.truth.json"))


@pytest.mark.parametrize(("files", "name"), SCENARIOS, ids=[s[1] for s in SCENARIOS])
def test_replay_of_each_capture_matches_its_ground_truth(files, name):
    result = replay([CAPTURES / f for f in files])
    expected = truth(name)
    assert (result.calls, result.answered, result.abandoned) == (
        expected["calls"], expected["answered"], expected["abandoned"])
    assert result.agents == expected["agents"]


def test_unknown_events_are_kept_and_counted():
    result = replay([CAPTURES / "queue-basic.ami"])
    assert result.unknown_events["RTCPSent"] == 63
    assert "Newchannel" not in result.unknown_events


def test_replay_is_deterministic():
    files = [CAPTURES / "resync.ami", CAPTURES / "resync-after.ami"]
    assert replay(files).as_dict() == replay(files).as_dict()


def test_a_recording_with_receive_times_replays_like_the_raw_bytes(tmp_path):
    raw = capture("transfers-hold.ami")
    recording = FlightRecorder(tmp_path / "day.ccami")
    for start in range(0, len(raw), 1000):  # as the socket delivered it, in pieces
        recording.write(raw[start:start + 1000], at=1_795_600_000 + start / 1000)
    recording.close()
    assert [len(chunk) for _, chunk in read_chunks(tmp_path / "day.ccami")][:2] == [1000, 1000]
    assert replay([tmp_path / "day.ccami"]).as_dict() == replay([CAPTURES / "transfers-hold.ami"]).as_dict()


def test_a_damaged_recording_names_the_file_and_the_offset(tmp_path):
    path = tmp_path / "bad.ccami"
    path.write_bytes(b"CCAMI1\nT 1.0 5\nEvent: Ping\r\n\r\n\nT 2.0 3\nabc\n")  # the first chunk says 5 bytes
    with pytest.raises(RecordingError, match=r"bad.ccami: chunk at byte 7 is longer or shorter than its header says"):
        replay([path])
    path.write_bytes(b"CCAMI1\nT 1.0 500\nEvent: Ping\r\n\r\n\nT 2.0 3\nabc\n")  # says more than the file holds
    with pytest.raises(RecordingError, match=r"bad.ccami: chunk at byte 7 is longer than its header says"):
        replay([path])
    path.write_bytes(b"CCAMI1\nT 1.0 99999999999\nabc\n")
    with pytest.raises(RecordingError, match=r"bad.ccami: chunk at byte 7 says 99,999,999,999 bytes"):
        replay([path])


def recorded(tmp_path, raw: bytes, piece: int = 1000):
    recording = FlightRecorder(tmp_path / "day.ccami")
    for start in range(0, len(raw), piece):
        recording.write(raw[start:start + piece], at=1_795_600_000 + start / piece)
    return recording


def test_a_recording_cut_off_mid_write_replays_up_to_where_it_stops(tmp_path):
    raw = capture("transfers-hold.ami")
    recorded(tmp_path, raw).close()
    whole = (tmp_path / "day.ccami").read_bytes()
    stop = raw.index(b"Event: Hangup", len(raw) // 2) + 20  # inside a Hangup
    piece = stop // 1000  # the recording's chunk that holds it: its header, then its bytes
    headers = sum(len(b"T %.6f %d\n" % (1_795_600_000 + start / 1000, len(raw[start:start + 1000])))
                  for start in range(0, (piece + 1) * 1000, 1000))
    cut_at = len(b"CCAMI1\n") + headers + stop + piece  # each whole chunk before it also ends with a newline
    assert whole[cut_at - 20:cut_at] == raw[stop - 20:stop]
    (tmp_path / "cut.ccami").write_bytes(whole[:cut_at])

    result = replay([tmp_path / "cut.ccami"])

    # Exactly the messages that were written whole, as if the raw stream had stopped before the cut Hangup.
    (tmp_path / "kept.ami").write_bytes(raw[:raw.rindex(b"\r\n\r\n", 0, stop) + 4])
    expected = replay([tmp_path / "kept.ami"])
    assert (result.events, result.calls, result.answered) == (expected.events, expected.calls, expected.answered)
    assert result.events < replay([CAPTURES / "transfers-hold.ami"]).events
    assert len(result.warnings) == 1
    assert "cut.ccami: ends inside the chunk at byte" in result.warnings[0]
    assert result.warnings[0].endswith("replayed up to there, the message it was in dropped")


def test_a_recording_cut_inside_a_chunk_header_keeps_every_chunk_before_it(tmp_path):
    raw = capture("queue-basic.ami")
    recorded(tmp_path, raw).close()
    whole = (tmp_path / "day.ccami").read_bytes()
    (tmp_path / "cut.ccami").write_bytes(whole + b"T 1795600999.0")
    result = replay([tmp_path / "cut.ccami"])
    assert result.as_dict() | {"warnings": []} == replay([CAPTURES / "queue-basic.ami"]).as_dict()
    assert result.warnings == [f"{tmp_path / 'cut.ccami'}: ends inside the chunk header at byte {len(whole)}; "
                               "replayed up to there"]


def test_the_recorder_hands_each_chunk_to_the_os_as_it_writes_it(tmp_path):
    recording = recorded(tmp_path, b"Asterisk Call Manager/11.0.0\r\nEvent: FullyBooted\r\n\r\n")
    try:  # not closed: what a killed server leaves on disk
        assert list(read_chunks(tmp_path / "day.ccami")) == [
            (1_795_600_000.0, b"Asterisk Call Manager/11.0.0\r\nEvent: FullyBooted\r\n\r\n")]
    finally:
        recording.close()


def test_replay_command_warns_of_a_cut_recording_and_still_prints_the_figures(tmp_path, capsys):
    recorded(tmp_path, capture("agi-ivr.ami")).close()
    whole = (tmp_path / "day.ccami").read_bytes()
    (tmp_path / "cut.ccami").write_bytes(whole[:-30])
    assert main(["replay", str(tmp_path / "cut.ccami"), "--json"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["warnings"] == [err.removeprefix("contactcentre: replay: warning: ").rstrip("\n")]
    assert "cut.ccami: ends inside the chunk at byte" in err


def test_replay_command_prints_one_json_object(capsys):
    assert main(["replay", str(CAPTURES / "agi-ivr.ami"), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert {k: printed[k] for k in ("calls", "answered", "abandoned")} == {"calls": 4, "answered": 2, "abandoned": 1}
    assert printed["agents"] == {"PJSIP/agent1": 1, "PJSIP/agent2": 1}
    assert printed["unknown_events"]["AGIExecStart"] == 32


def test_replay_command_refuses_a_missing_file(capsys, tmp_path):
    assert main(["replay", str(tmp_path / "nope.ami")]) == 2
    assert "nope.ami: no such file" in capsys.readouterr().err


def test_replay_gives_each_queue_members_state_and_their_pauses():
    result = replay([CAPTURES / "agent-states.ami"])
    support = result.queue_members["support"]
    # agent3 was logged in, then removed; agent1 and agent2 were paused, then unpaused (the truth file's notes).
    assert set(support) == {"PJSIP/agent1", "PJSIP/agent2"}
    assert not support["PJSIP/agent1"]["paused"] and not result.queue_members["sales"]["PJSIP/agent2"]["paused"]
    # agent2 was paused once in every queue it is in (support and sales)
    assert result.pauses == {"sales": {"PJSIP/agent2": {"Training": 1}},
                             "support": {"PJSIP/agent1": {"Lunch": 1}, "PJSIP/agent2": {"Training": 1}}}
    assert set(result.queue_members["helpdesk"]) == {"Local/2001@agents/n", "Local/2002@agents/n"}


def test_a_member_only_the_queuestatus_answer_names_is_one_of_its_queues_members():
    # In resync.ami, sales' PJSIP/agent4 sends no member event at all: only QueueStatus lists it.
    member = replay([CAPTURES / "resync.ami"]).queue_members["sales"]["PJSIP/agent4"]
    assert member["paused"] is False and member["membership"] == "static"


def test_a_replay_that_stops_mid_day_shows_who_was_paused_then_and_why(tmp_path):
    raw = capture("agent-states.ami")
    (tmp_path / "morning.ami").write_bytes(raw[:raw.index(b"Event: QueueMemberAdded")])
    members = replay([tmp_path / "morning.ami"]).queue_members
    assert {(q, i): (m["paused"], m["reason"]) for q, ms in members.items() for i, m in ms.items()
            if i.startswith("PJSIP/agent") and (m["paused"] or q == "support")} == {
        ("support", "PJSIP/agent1"): (True, "Lunch"), ("support", "PJSIP/agent2"): (True, "Training"),
        ("sales", "PJSIP/agent2"): (True, "Training")}
    assert "PJSIP/agent3" not in members["support"]


def test_replay_command_prints_each_queues_members(capsys):
    assert main(["replay", str(CAPTURES / "agent-states.ami")]) == 0
    out = capsys.readouterr().out
    assert "queue support: PJSIP/agent1 ready, PJSIP/agent2 ready" in out
