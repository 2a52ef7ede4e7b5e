"""AMI MixMonitor and StopMixMonitor: recording a call, as app_mixmonitor's manager actions answer.

Success is a bare `Response: Success` (no Message; a `MixMonitorID` header
only when the i(variable) option asks for the recording's id), and the channel
gets `MixMonitorStart` / `MixMonitorStop` events. A recording also stops, with
its `MixMonitorStop`, when its channel hangs up. No audio is written: the
simulator keeps what would have been recorded in `recordings`.
"""

from __future__ import annotations

import itertools
import re
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from contactcentre.telephony.ami.protocol import AmiMessage
from contactcentre.telephony.simulator.ami_server import ActionHandler, AmiSession
from contactcentre.telephony.simulator.channels import SimChannel

if TYPE_CHECKING:
    from contactcentre.telephony.simulator.pbx import SimulatedPbx

_ID_OPTION = re.compile(r"i\(([^)]*)\)")


@dataclass
class Recording:
    mixmonitor_id: str
    channel: str
    filename: str
    options: str
    started: float
    stopped: float | None = None


class RecordingActions:
    def __init__(self, pbx: SimulatedPbx):
        self.pbx = pbx
        self.recordings: list[Recording] = []
        self._ids = itertools.count(1)

    def handlers(self) -> dict[str, ActionHandler]:
        return {"MixMonitor": self.mix_monitor, "StopMixMonitor": self.stop_mix_monitor}

    def active(self, channel: SimChannel) -> list[Recording]:
        return [r for r in self.recordings if r.mixmonitor_id in channel.mixmonitors and r.stopped is None]

    async def mix_monitor(self, session: AmiSession, action: AmiMessage) -> None:
        channel = self._channel(session, action)
        if channel is None:
            return
        filename, options = action.get("File") or "", action.get("Options") or ""
        if not filename:  # MixMonitor() refuses to start without a file name
            session.respond(action, "Error", [("Message", "Could not start monitoring channel")])
            return
        recording = Recording(f"0x{next(self._ids):012x}", channel.name, filename, options, time.time())
        self.recordings.append(recording)
        channel.mixmonitors.append(recording.mixmonitor_id)
        wants_id = _ID_OPTION.search(options)
        if wants_id:
            self.pbx.set_variable(channel, wants_id.group(1), recording.mixmonitor_id)
        session.respond(action, "Success", [("MixMonitorID", recording.mixmonitor_id)] if wants_id else [])
        self.pbx.channel_event("MixMonitorStart", channel)

    async def stop_mix_monitor(self, session: AmiSession, action: AmiMessage) -> None:
        channel = self._channel(session, action)
        if channel is None:
            return
        wanted = action.get("MixMonitorID") or ""
        stopping = [r for r in self.active(channel) if not wanted or r.mixmonitor_id == wanted]
        if not stopping:
            session.respond(action, "Error", [("Message", "Could not stop monitoring channel")])
            return
        session.respond(action, "Success")
        for recording in stopping:
            self._stop(channel, recording)

    def channel_gone(self, channel: SimChannel) -> None:
        for recording in self.active(channel):
            self._stop(channel, recording)

    def _stop(self, channel: SimChannel, recording: Recording) -> None:
        recording.stopped = time.time()
        channel.mixmonitors.remove(recording.mixmonitor_id)
        self.pbx.channel_event("MixMonitorStop", channel)

    def _channel(self, session: AmiSession, action: AmiMessage) -> SimChannel | None:
        name = action.get("Channel") or ""
        if not name:
            session.respond(action, "Error", [("Message", "No channel specified")])
            return None
        channel = self.pbx.channels.get(name)
        if channel is None:
            session.respond(action, "Error", [("Message", "No such channel")])
        return channel
