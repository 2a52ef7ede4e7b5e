"""Synthetic callers for the demo: Poisson arrivals from known and unknown numbers, who answer the
post-call survey with their keypad (most of them), press a wrong key first (some) or hang up (a few)."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Sequence

from contactcentre.telephony.simulator.channels import HANG_UP
from contactcentre.telephony.simulator.pbx import SimulatedPbx

log = logging.getLogger(__name__)

# Ofcom's drama range: numbers that can never belong to a real person.
UNKNOWN_NUMBERS = [f"+4477009000{n:02d}" for n in range(100)]
HANG_UP_SHARE = 0.1  # of callers asked a question, those who hang up instead of answering
WRONG_KEY_SHARE = 0.1  # those who first press a key that is no answer, then a right one


async def generate_calls(pbx: SimulatedPbx, callers: Sequence[tuple[str, str]], calls_per_minute: float,
                         unknown_share: float, rng: random.Random | None = None,
                         questions: Sequence[tuple[int, int]] = ()) -> None:
    """Place calls until cancelled. `callers` are (number, name) of customers in the store;
    `questions` the (lowest, highest) answers of each survey question a caller may be asked."""
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
        call = pbx.place_call(number, name, keys=survey_keys(rng, questions))
        log.info("demo caller dials in", extra={"call_id": call.call_id})


def survey_keys(rng: random.Random, questions: Sequence[tuple[int, int]]) -> list[str]:
    """What one caller keys in, question by question: an answer, a wrong key and then an answer, or
    a hang-up that ends it."""
    keys = []
    for lowest, highest in questions:
        roll = rng.random()
        if roll < HANG_UP_SHARE:
            keys.append(HANG_UP)
            break
        if roll < HANG_UP_SHARE + WRONG_KEY_SHARE:
            keys.append(rng.choice([k for k in "0123456789*" if not (k.isdigit() and lowest <= int(k) <= highest)]))
        keys.append(str(rng.randint(lowest, highest)))
    return keys
