"""The live parts of a running server, held in one place on the app."""

from __future__ import annotations

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
                "agents": len(self.router.agents) if self.router else 0}
