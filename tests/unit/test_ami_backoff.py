"""How long the AMI client waits between reconnects."""

import itertools
import random

from contactcentre.telephony.ami.client import backoff


def test_the_wait_doubles_up_to_the_limit_with_jitter_around_each_step():
    waits = list(itertools.islice(backoff(30.0, rng=random.Random(7)), 12))
    steps = [0.5, 1, 2, 4, 8, 16, 30, 30, 30, 30, 30, 30]
    for wait, step in zip(waits, steps):
        assert 0.5 * step <= wait <= 1.5 * step
    assert len({round(wait / step, 6) for wait, step in zip(waits, steps)}) == len(waits)  # each step its own jitter


def test_two_servers_that_lost_the_pbx_together_do_not_knock_again_together():
    first = list(itertools.islice(backoff(30.0, rng=random.Random(1)), 8))
    second = list(itertools.islice(backoff(30.0, rng=random.Random(2)), 8))
    assert all(a != b for a, b in zip(first, second))


def test_a_limit_below_the_first_wait_caps_it():
    assert all(0.05 <= wait <= 0.15 for wait in itertools.islice(backoff(0.1), 20))
