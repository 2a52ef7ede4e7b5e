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
    path.write_bytes(b"CCAMI1\nT 1.0 500\nshort\n")
    with pytest.raises(RecordingError, match=r"bad.ccami: chunk at byte 7 is cut short"):
        replay([path])


def test_replay_command_prints_one_json_object(capsys):
    assert main(["replay", str(CAPTURES / "agi-ivr.ami"), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert {k: printed[k] for k in ("calls", "answered", "abandoned")} == {"calls": 4, "answered": 2, "abandoned": 1}
    assert printed["agents"] == {"PJSIP/agent1": 1, "PJSIP/agent2": 1}
    assert printed["unknown_events"]["AGIExecStart"] == 32


def test_replay_command_refuses_a_missing_file(capsys, tmp_path):
    assert main(["replay", str(tmp_path / "nope.ami")]) == 2
    assert "nope.ami: no such file" in capsys.readouterr().err
