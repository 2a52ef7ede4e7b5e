"""Suggested offers for the screen pop: a small rule set, read from YAML (config/offers.yaml).

The first rule whose conditions all hold wins. The pop shows it only to a
customer whose latest marketing consent by phone is a yes; that check is part
of the pop's one statement (screenpop.py), these rules only pick what to offer.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from contactcentre.crm.models import ServiceTier

MAX_TITLE = 120
CONDITIONS = {"tier", "segment", "churn_risk", "min_lifetime_value", "max_lifetime_value"}


class OfferRulesError(ValueError):
    """The offers file cannot be used; the message names the file, the rule and the problem."""


@dataclass(frozen=True, slots=True)
class Offer:
    id: str
    title: str
    why: str


@dataclass(frozen=True, slots=True)
class OfferRule:
    offer: Offer
    tiers: frozenset[str] | None = None
    segments: frozenset[str] | None = None
    churn_risk: bool | None = None
    min_value: Decimal | None = None
    max_value: Decimal | None = None

    def holds(self, tier: str, segment: str | None, lifetime_value: Decimal, churn_risk: bool) -> bool:
        return ((self.tiers is None or tier in self.tiers)
                and (self.segments is None or segment in self.segments)
                and (self.churn_risk is None or churn_risk is self.churn_risk)
                and (self.min_value is None or lifetime_value >= self.min_value)
                and (self.max_value is None or lifetime_value <= self.max_value))


@dataclass(frozen=True)
class OfferRules:
    rules: tuple[OfferRule, ...] = ()

    def suggest(self, tier: str, segment: str | None, lifetime_value: Decimal, churn_risk: bool) -> Offer | None:
        return next((r.offer for r in self.rules if r.holds(tier, segment, lifetime_value, churn_risk)), None)


def load_offers(path: Path) -> OfferRules:
    try:
        data = YAML(typ="safe").load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise OfferRulesError(f"{path}: not found") from None
    except YAMLError as exc:
        raise OfferRulesError(f"{path}: not valid YAML: {exc}") from None
    return parse_offers(data, str(path))


def parse_offers(data: object, source: str) -> OfferRules:
    if not isinstance(data, dict) or not isinstance(data.get("offers"), list):
        raise OfferRulesError(f"{source}: expected a mapping with a list under 'offers'")
    rules, seen = [], set()
    for n, raw in enumerate(data["offers"], start=1):
        rule = _rule(raw, f"{source}: offer {n}")
        if rule.offer.id in seen:
            raise OfferRulesError(f"{source}: offer {n}: id {rule.offer.id!r} is used twice")
        seen.add(rule.offer.id)
        rules.append(rule)
    return OfferRules(tuple(rules))


def _rule(raw: object, where: str) -> OfferRule:
    if not isinstance(raw, dict):
        raise OfferRulesError(f"{where}: expected a mapping with id, title, why and when")
    unknown = set(raw) - {"id", "title", "why", "when"}
    if unknown:
        raise OfferRulesError(f"{where}: unknown key {sorted(unknown)[0]!r}; allowed: id, title, why, when")
    offer = Offer(_text(raw, "id", where, 64), _text(raw, "title", where, MAX_TITLE), _text(raw, "why", where, 200))
    when = raw.get("when", {})
    if not isinstance(when, dict) or set(when) - CONDITIONS:
        raise OfferRulesError(f"{where} ({offer.id}): when: expected a mapping of {', '.join(sorted(CONDITIONS))}")
    churn = when.get("churn_risk")
    if churn is not None and not isinstance(churn, bool):
        raise OfferRulesError(f"{where} ({offer.id}): when.churn_risk: expected true or false, got {churn!r}")
    tiers = _names(when, "tier", where, offer.id)
    if tiers is not None and not tiers <= {t.value for t in ServiceTier}:
        raise OfferRulesError(f"{where} ({offer.id}): when.tier: expected some of "
                              f"{', '.join(t.value for t in ServiceTier)}, got {sorted(tiers)}")
    return OfferRule(offer, tiers, _names(when, "segment", where, offer.id), churn,
                     _amount(when, "min_lifetime_value", where, offer.id),
                     _amount(when, "max_lifetime_value", where, offer.id))


def _text(raw: dict, key: str, where: str, limit: int) -> str:
    value = raw.get(key)
    if not isinstance(value, str) or not value.strip() or len(value) > limit:
        raise OfferRulesError(f"{where}: {key}: expected text of 1 to {limit} characters, got {value!r}")
    return value.strip()


def _names(when: dict, key: str, where: str, offer_id: str) -> frozenset[str] | None:
    value = when.get(key)
    if value is None:
        return None
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise OfferRulesError(f"{where} ({offer_id}): when.{key}: expected a list of names, got {value!r}")
    return frozenset(value)


def _amount(when: dict, key: str, where: str, offer_id: str) -> Decimal | None:
    value = when.get(key)
    if value is None:
        return None
    try:
        if isinstance(value, bool):
            raise InvalidOperation
        return Decimal(str(value))
    except InvalidOperation:
        raise OfferRulesError(f"{where} ({offer_id}): when.{key}: expected a number, got {value!r}") from None
