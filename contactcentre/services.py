"""The live parts of a running server, held in one place on the app."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import socketio

from contactcentre.bus import Bus
from contactcentre.config import Settings
from contactcentre.crm.callbacks import CallbackStore
from contactcentre.crm.offers import OfferRules
from contactcentre.crm.screenpop import ScreenPopLookup
from contactcentre.ivr.survey import PostCallSurvey
from contactcentre.routing.outbound import OutboundDialler
from contactcentre.routing.service import QueueRouter
from contactcentre.telephony.agi.server import AgiServer
from contactcentre.telephony.ami.client import AmiClient, LinkStatus
from contactcentre.telephony.simulator.pbx import SimulatedPbx
from contactcentre.telephony.tracker import CallTracker


@dataclass
class Services:
    """The live parts, for the CLI, the demo and the tests to reach."""

    settings: Settings
    bus: Bus = field(default_factory=Bus)
    engine: object = None
    sessions: object = None
    tracker: CallTracker | None = None
    router: QueueRouter | None = None
    survey: PostCallSurvey | None = None
    offers: OfferRules | None = None
    lookup: ScreenPopLookup | None = None
    callbacks: CallbackStore | None = None
    outbound: OutboundDialler | None = None
    ami: AmiClient | None = None
    agi: AgiServer | None = None
    simulator: SimulatedPbx | None = None
    sio: socketio.AsyncServer | None = None
    notifier: object = None
    console: object = None
    ami_secret: str = ""

    @property
    def health(self) -> dict:
        link = self.ami.status if self.ami else LinkStatus.STARTING
        return {"ok": link is LinkStatus.CONNECTED, "ami": link.value,
                "ami_error": self.ami.last_error if self.ami else "",
                "calls": len(self.tracker.calls) if self.tracker else 0,
                "agents": len(self.router.agents) if self.router else 0,
                "telephony": self.telephony_counts}

    @property
    def telephony_counts(self) -> dict:
        """What the PBX sent that we could not use, since start: events of no known kind (dropped
        unparsed, or without the headers their kind must have) by name, messages cut or undecodable,
        and FastAGI peers refused or sessions ended by a protocol error."""
        unknown = (self.ami.skipped_events if self.ami else Counter()) + (
            self.tracker.unknown_events if self.tracker else Counter())
        return {"ami_events": self.ami.events_received if self.ami else 0,
                "unknown_events": dict(sorted(unknown.items())),
                **(self.ami.damaged_messages if self.ami else {"oversized": 0, "undecodable": 0}),
                "agi_protocol_errors": self.agi.protocol_errors if self.agi else 0}
