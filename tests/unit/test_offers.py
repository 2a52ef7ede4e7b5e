"""The pop's offer rules: the first rule that holds wins; a bad file is refused with file, rule and problem."""

from decimal import Decimal

import pytest

from contactcentre.config import DEFAULT_CONFIG
from contactcentre.crm.offers import OfferRulesError, load_offers, parse_offers

SHIPPED = load_offers(DEFAULT_CONFIG.parent / "offers.yaml")


@pytest.mark.parametrize(("tier", "segment", "value", "churn", "offer"), [
    ("basic", "consumer", "750", True, "loyalty-discount"),  # churn risk with spend: the discount, not the review
    ("proactive", None, "20", True, "service-review"),
    ("basic", "consumer", "1000", False, "reactive-trial"),
    ("basic", "consumer", "999.99", False, None),
    ("reactive", "business", "0", False, "proactive-upgrade"),
    ("reactive", "consumer", "5000", False, None),
    ("proactive", "business", "5000", False, None),
])
def test_the_shipped_rules_pick_the_first_offer_that_fits(tier, segment, value, churn, offer):
    found = SHIPPED.suggest(tier, segment, Decimal(value), churn)
    assert (found.id if found else None) == offer
    assert found is None or (found.title and found.why)


@pytest.mark.parametrize(("data", "problem"), [
    ({"offer": []}, "expected a mapping with a list under 'offers'"),
    ({"offers": [{"id": "a", "title": "A", "why": "w", "when": {"tier": ["gold"]}}]},
     "offer 1 (a): when.tier: expected some of basic, reactive, proactive, got ['gold']"),
    ({"offers": [{"id": "a", "title": "A", "why": "w", "when": {"colour": "red"}}]}, "offer 1 (a): when: expected"),
    ({"offers": [{"id": "a", "title": "A", "why": "w", "when": {"min_lifetime_value": "lots"}}]},
     "when.min_lifetime_value: expected a number, got 'lots'"),
    ({"offers": [{"id": "a", "title": "A", "why": "w", "when": {"churn_risk": "yes"}}]},
     "when.churn_risk: expected true or false"),
    ({"offers": [{"id": "a", "title": "", "why": "w"}]}, "offer 1: title: expected text of 1 to 120 characters"),
    ({"offers": [{"id": "a", "title": "A", "why": "w"}, {"id": "a", "title": "B", "why": "w"}]},
     "offer 2: id 'a' is used twice"),
])
def test_a_bad_rule_names_the_file_the_rule_and_the_problem(data, problem):
    with pytest.raises(OfferRulesError, match="^offers.yaml: ") as refused:
        parse_offers(data, "offers.yaml")
    assert problem in str(refused.value)


def test_a_rule_without_conditions_fits_everyone():
    rules = parse_offers({"offers": [{"id": "all", "title": "Newsletter", "why": "everyone"}]}, "x")
    assert rules.suggest("basic", None, Decimal("0"), False).id == "all"
