"""Synthetic callers for the demo: Poisson arrivals from known and unknown numbers."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Sequence

from contactcentre.telephony.simulator.pbx import SimulatedPbx

log = logging.getLogger(__name__)

# Ofcom's drama range: numbers that can never belong to a real person.
UNKNOWN_NUMBERS = [f"+4477009000{n:02d}" for n in range(100)]


async def generate_calls(pbx: SimulatedPbx, callers: Sequence[tuple[str, str]], calls_per_minute: float,
                         unknown_share: float, rng: random.Random | None = None) -> None:
    """Place calls until cancelled. `callers` are (number, name) of customers in the store."""
    rng = rng or random.Random()
    if calls_per_minute <= 0:
        return
    mean_gap = 60.0 / calls_per_minute
    while True:
        await asyncio.sleep(rng.expovariate(1.0 / mean_gap))
        if callers and rng.random() >= unknown_share:
            number, name = rng.choice(callers)
        else:
            number, name = rng.choice(UNKNOWN_NUMBERS), ""
        call = pbx.place_call(number, name)
        log.info("demo caller dials in", extra={"call_id": call.call_id})
