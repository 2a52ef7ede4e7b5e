"""Flight recorder: the raw AMI stream with receive times, and its replay.

A recording is `CCAMI1\\n` followed by chunks, each `T <unix time> <length>\\n`,
then exactly <length> bytes as they came off the socket, then `\\n`. Replay
also takes a plain raw capture (the bytes as Asterisk sent them, no times),
like those in ../shared/ami-captures/. Several files replay as one day with a
reconnect between them: the CoreShowChannels answer in the later file resyncs
the tracker, as the live server does after a reconnect.

Replay is deterministic: the clock is the recorded time (or a count of
messages for a raw capture), never the wall clock.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from contactcentre.bus import Bus
from contactcentre.telephony.ami.protocol import AmiParser
from contactcentre.telephony.tracker import CallTracker

MAGIC = b"CCAMI1\n"
MAX_CHUNK = 16 * 1024 * 1024


class RecordingError(ValueError):
    """A recording that cannot be read; the message names the file and the offset."""


class FlightRecorder:
    """Appends every chunk the AMI socket delivers, with its receive time."""

    def __init__(self, path: Path | str):
        self.path = Path(path)
        self._file: BinaryIO = self.path.open("ab")
        if self._file.tell() == 0:
            self._file.write(MAGIC)

    def write(self, data: bytes, at: float | None = None) -> None:
        self._file.write(b"T %.6f %d\n" % (time.time() if at is None else at, len(data)))
        self._file.write(data)
        self._file.write(b"\n")

    def flush(self) -> None:
        self._file.flush()

    def close(self) -> None:
        self._file.close()


def read_chunks(path: Path) -> Iterator[tuple[float | None, bytes]]:
    """(receive time or None, bytes) for a recording or a raw capture."""
    data = path.read_bytes()
    if not data.startswith(MAGIC):
        yield None, data
        return
    offset = len(MAGIC)
    while offset < len(data):
        end = data.find(b"\n", offset)
        header = data[offset:end].split() if end >= 0 else []
        if len(header) != 3 or header[0] != b"T":
            raise RecordingError(f"{path}: bad chunk header at byte {offset}: {data[offset:offset + 40]!r}")
        try:
            at, length = float(header[1]), int(header[2])
        except ValueError:
            raise RecordingError(f"{path}: bad chunk header at byte {offset}: {data[offset:end]!r}") from None
        start = end + 1
        if length > MAX_CHUNK or start + length + 1 > len(data) or data[start + length:start + length + 1] != b"\n":
            raise RecordingError(f"{path}: chunk at byte {offset} is cut short or longer than it says")
        yield at, data[start:start + length]
        offset = start + length + 1


@dataclass
class ReplayResult:
    calls: int
    answered: int
    abandoned: int
    agents: dict[str, int]
    unknown_events: dict[str, int]
    events: int
    devices: dict[str, str]

    def as_dict(self) -> dict:
        return {"calls": self.calls, "answered": self.answered, "abandoned": self.abandoned,
                "agents": self.agents, "unknown_events": self.unknown_events, "events": self.events,
                "devices": self.devices}


def replay(paths: list[Path]) -> ReplayResult:
    now = [0.0]
    tracker = CallTracker(Bus(), clock=lambda: now[0], resync_from_stream=True)
    devices: dict[str, str] = {}
    events = 0
    for path in paths:
        parser = AmiParser()  # each file is a new connection: it starts with the banner
        for at, chunk in read_chunks(path):
            for message in parser.feed(chunk):
                if message.kind != "event":
                    continue
                events += 1
                now[0] = at if at is not None else now[0] + 0.001
                if message.name == "DeviceStateChange":
                    devices[message.get("Device", "")] = message.get("State", "")
                tracker.handle(message)
        for message in parser.feed(b"\r\n\r\n" if parser.pending() else b""):
            if message.kind == "event":
                events += 1
                tracker.handle(message)
    stats = tracker.stats
    return ReplayResult(stats.calls, stats.answered, stats.abandoned, dict(sorted(stats.agents.items())),
                        dict(sorted(tracker.unknown_events.items())), events, dict(sorted(devices.items())))
