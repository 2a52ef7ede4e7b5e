"""The callback dialler: a task that offers due callbacks to ready agents and keeps each try's result.

Every `poll_interval` seconds, while some agent is free and no caller waits,
it claims as many due callbacks as there are free agents, checks consent and
do-not-call again for each (it may have changed since it was scheduled), and
hands the ones that pass to the outbound dialler: screen pop of the customer,
then the agent's phone, then the customer's. How the try ended comes back on
the bus (OutboundCallEnded) and is written to the callback.
"""

from __future__ import annotations

import asyncio
import logging

from contactcentre.bus import Bus
from contactcentre.crm.callbacks import REFUSED, CallbackStore, DueCallback
from contactcentre.crm.consent import DialRefused
from contactcentre.routing.events import OutboundCallEnded
from contactcentre.routing.outbound import OutboundDialler
from contactcentre.routing.service import QueueRouter

log = logging.getLogger(__name__)


class CallbackDialler:
    def __init__(self, store: CallbackStore, outbound: OutboundDialler, router: QueueRouter, bus: Bus,
                 poll_interval: float):
        self._store = store
        self._outbound = outbound
        self._router = router
        self._poll_interval = poll_interval
        bus.subscribe(OutboundCallEnded, self._on_call_ended)

    async def run(self) -> None:
        released = await self._store.release_stale()
        if released:
            log.info("%d callbacks cut short by the last stop are due again", released)
        while True:
            try:
                await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("callback dialler: this round failed; trying again next round")
            await asyncio.sleep(self._poll_interval)

    async def tick(self) -> None:
        """One round: offer what is due to whoever is free."""
        free = self._router.free_for_outbound
        if not free:
            return
        for due in await self._store.claim_due(free):
            await self._try(due)

    async def _try(self, due: DueCallback) -> None:
        try:
            await self._store.recheck(due)
        except DialRefused as exc:
            log.info("callback refused when due: %s", exc.reason, extra={"callback_id": due.id})
            await self._store.record(due.id, REFUSED, exc.reason, None)
            return
        if await self._outbound.callback_call(due) is None:
            await self._store.unclaim(due.id)  # the agent went while the store was asked

    async def _on_call_ended(self, event: OutboundCallEnded) -> None:
        if event.callback_id is not None:
            await self._store.record(event.callback_id, event.result, event.reason, event.call_id)
