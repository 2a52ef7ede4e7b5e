"""The demo's simulated callers and what they key in at the post-call survey."""

import random
from collections import Counter

from contactcentre.telephony.simulator.channels import HANG_UP
from contactcentre.telephony.simulator.traffic import survey_keys

QUESTIONS = [(1, 5), (1, 2)]


def test_most_callers_answer_every_question_some_press_a_wrong_key_first_and_some_hang_up():
    rng = random.Random(3)
    kinds = Counter()
    for _ in range(2000):
        keys = survey_keys(rng, QUESTIONS)
        answers = [k for k in keys if k != HANG_UP]
        wrong = [k for k, (low, high) in zip(answers, _asked(keys)) if not (k.isdigit() and low <= int(k) <= high)]
        kinds["hang up"] += HANG_UP in keys
        kinds["wrong key"] += bool(wrong)
        kinds["all answered"] += HANG_UP not in keys and not wrong
        assert keys.count(HANG_UP) <= 1 and (HANG_UP not in keys or keys[-1] == HANG_UP)
        assert all(len(k) == 1 for k in answers)
    assert kinds["all answered"] > 1200 and 100 < kinds["hang up"] < 600 and 100 < kinds["wrong key"] < 600


def test_a_caller_asked_nothing_keys_nothing():
    assert survey_keys(random.Random(1), []) == []


def _asked(keys: list[str]) -> list[tuple[int, int]]:
    """The question each key answers: a wrong key is followed by a second try at the same question."""
    asked, question = [], 0
    for key in keys:
        if key == HANG_UP:
            break
        low, high = QUESTIONS[question]
        asked.append((low, high))
        if key.isdigit() and low <= int(key) <= high:
            question += 1
    return asked
