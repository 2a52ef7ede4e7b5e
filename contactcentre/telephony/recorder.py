"""Flight recorder: the raw AMI stream with receive times, and its replay.

A recording is `CCAMI1\\n` followed by chunks, each `T <unix time> <length>\\n`,
then exactly <length> bytes as they came off the socket, then `\\n`. Replay
also takes a plain raw capture (the bytes as Asterisk sent them, no times),
like those in ../shared/ami-captures/. Several files replay as one day with a
reconnect between them: the CoreShowChannels answer in the later file resyncs
the tracker, as the live server does after a reconnect.

The recorder flushes every chunk it writes, so a server that is killed leaves
at most one chunk half written; replay reads such a file up to where it stops,
drops the message it was in the middle of, and says so (`RecordingCutShort`).

Replay is deterministic: the clock is the recorded time (or a count of
messages for a raw capture), never the wall clock.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from contactcentre.bus import Bus
from contactcentre.telephony.ami.protocol import AmiMessage, AmiParser
from contactcentre.telephony.tracker import CallTracker

MAGIC = b"CCAMI1\n"
_CHUNK_HEADER = re.compile(rb"\nT \d+(?:\.\d+)? \d+\n")  # never an AMI line: those are `Key: value`
MAX_CHUNK = 16 * 1024 * 1024


class RecordingError(ValueError):
    """A recording that cannot be read; the message names the file and the offset."""


class RecordingCutShort(RecordingError):
    """The recording ends inside a chunk (the recorder was stopped mid-write): raised after
    the chunk's bytes that are there have been read."""


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
        self._file.flush()  # one write to the OS a read: a killed server loses no more than it was writing

    def close(self) -> None:
        self._file.close()


def read_chunks(path: Path) -> Iterator[tuple[float | None, bytes]]:
    """(receive time or None, bytes) for a recording or a raw capture.

    Raises RecordingError for a damaged recording, and RecordingCutShort, after
    yielding what there is of it, for one that ends inside its last chunk.
    """
    data = path.read_bytes()
    if not data.startswith(MAGIC):
        yield None, data
        return
    offset = len(MAGIC)
    while offset < len(data):
        end = data.find(b"\n", offset)
        if end < 0:
            raise RecordingCutShort(f"{path}: ends inside the chunk header at byte {offset}")
        header = data[offset:end].split()
        if len(header) != 3 or header[0] != b"T":
            raise RecordingError(f"{path}: bad chunk header at byte {offset}: {data[offset:offset + 40]!r}")
        try:
            at, length = float(header[1]), int(header[2])
        except ValueError:
            raise RecordingError(f"{path}: bad chunk header at byte {offset}: {data[offset:end]!r}") from None
        start = end + 1
        if length > MAX_CHUNK:
            raise RecordingError(f"{path}: chunk at byte {offset} says {length:,} bytes, over the "
                                 f"{MAX_CHUNK:,} a recorder writes")
        if start + length >= len(data):  # the last chunk, without its closing newline: stopped mid-write
            if _CHUNK_HEADER.search(data, start):  # ... unless more chunks follow: its length is wrong
                raise RecordingError(f"{path}: chunk at byte {offset} is longer than its header says")
            yield at, data[start:start + length]
            raise RecordingCutShort(f"{path}: ends inside the chunk at byte {offset} "
                                    f"({len(data) - start:,} of {length:,} bytes and its newline written)")
        if data[start + length] != 0x0A:
            raise RecordingError(f"{path}: chunk at byte {offset} is longer or shorter than its header says")
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
    devices: dict[str, str]  # each device's last state (DeviceStateChange): the phones' side of agent states
    queue_members: dict[str, dict[str, dict]]  # queue -> member interface -> its state when the stream ends
    pauses: dict[str, dict[str, dict[str, int]]]  # queue -> member interface -> pause reason -> times paused
    warnings: list[str]  # what was read past: a recording cut short

    def as_dict(self) -> dict:
        return {"calls": self.calls, "answered": self.answered, "abandoned": self.abandoned,
                "agents": self.agents, "unknown_events": self.unknown_events, "events": self.events,
                "devices": self.devices, "queue_members": self.queue_members, "pauses": self.pauses,
                "warnings": self.warnings}


class QueueMembers:
    """Agents' states as app_queue reports them: who is a member of which queue, paused (and
    why) or not, on a call or not; and how often each was paused in each queue, for what (a
    pause in every queue at once is one pause in each)."""

    # The member events, and QueueStatus's QueueMember items (a snapshot, which names the member
    # Location and Name rather than Interface and MemberName).
    EVENTS = frozenset({"QueueMemberAdded", "QueueMemberRemoved", "QueueMemberPause", "QueueMemberPenalty",
                        "QueueMemberStatus", "QueueMemberRinginuse", "QueueMember"})

    def __init__(self) -> None:
        self.members: dict[str, dict[str, dict]] = {}
        self.pauses: dict[str, dict[str, dict[str, int]]] = {}

    def apply(self, message: AmiMessage) -> None:
        queue, interface = message.get("Queue"), message.get("Interface") or message.get("Location")
        if not queue or not interface:
            return  # a damaged event: nothing to say whose state it is
        members = self.members.setdefault(queue, {})
        if message.name == "QueueMemberRemoved":
            members.pop(interface, None)
            return
        paused = message.get("Paused") == "1"
        reason = (message.get("PausedReason") or "") if paused else ""
        if message.name == "QueueMemberPause" and paused:
            reasons = self.pauses.setdefault(queue, {}).setdefault(interface, {})
            reasons[reason] = reasons.get(reason, 0) + 1
        members[interface] = {"name": message.get("MemberName") or message.get("Name") or "", "paused": paused,
                              "reason": reason, "in_call": message.get("InCall") == "1",
                              "membership": message.get("Membership") or ""}

    def result(self) -> tuple[dict, dict]:
        """(members, pauses), every level in name order, so the same stream prints the same JSON."""
        members = {queue: dict(sorted(by.items())) for queue, by in sorted(self.members.items()) if by}
        pauses = {queue: {interface: dict(sorted(reasons.items())) for interface, reasons in sorted(by.items())}
                  for queue, by in sorted(self.pauses.items())}
        return members, pauses


def replay(paths: list[Path]) -> ReplayResult:
    now = [0.0]
    tracker = CallTracker(Bus(), clock=lambda: now[0], resync_from_stream=True)
    devices: dict[str, str] = {}
    members = QueueMembers()
    warnings: list[str] = []
    events = 0

    def apply(messages: list[AmiMessage], at: float | None) -> None:
        nonlocal events
        for message in messages:
            if message.kind != "event":
                continue
            events += 1
            now[0] = at if at is not None else now[0] + 0.001
            if message.name == "DeviceStateChange":
                devices[message.get("Device", "")] = message.get("State", "")
            elif message.name in QueueMembers.EVENTS:
                members.apply(message)
            tracker.handle(message)

    for path in paths:
        parser = AmiParser()  # each file is a new connection: it starts with the banner
        try:
            for at, chunk in read_chunks(path):
                apply(parser.feed(chunk), at)
        except RecordingCutShort as cut:
            # The message the recorder was writing when it stopped is half there: dropped, not guessed at.
            warnings.append(f"{cut}; replayed up to there" + (", the message it was in dropped"
                                                               if parser.pending() else ""))
            continue
        if parser.pending():  # a raw capture may end without the last message's blank line
            apply(parser.feed(b"\r\n\r\n"), None)
    stats = tracker.stats
    return ReplayResult(stats.calls, stats.answered, stats.abandoned, dict(sorted(stats.agents.items())),
                        dict(sorted(tracker.unknown_events.items())), events, dict(sorted(devices.items())),
                        *members.result(), warnings)
