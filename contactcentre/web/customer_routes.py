"""The API's customers, their contact points and their consents.

Everyone on the floor finds and opens customers and records a consent the
customer gives or withdraws on a call; supervisors and admins create and
change customers and their contact points; only an admin sets or lifts a legal
hold, since a hold stops an erasure the law would otherwise require.
"""

from __future__ import annotations

from datetime import UTC, datetime, time

from aiohttp import web

from contactcentre.crm import consent, customers
from contactcentre.crm.consent import CHANNELS, CONSENTS, PURPOSES
from contactcentre.crm.customers import CONTACT_POINTS, CUSTOMERS, KINDS, NewContactPoint
from contactcentre.crm.fields import MAX_EMAIL, language_tag
from contactcentre.crm.models import Customer, Role, ServiceTier, row_as_json
from contactcentre.web.api import (
    ACTOR,
    EVERYONE,
    MANAGERS,
    Body,
    access,
    api_role,
    bool_param,
    choice_param,
    customer_records_route,
    email_param,
    id_param,
    json_error,
    one_route,
    path_id,
    phone_param,
    search_route,
    text_param,
)
from contactcentre.web.keys import SERVICES, SETTINGS

TIERS = tuple(tier.value for tier in ServiceTier)
CUSTOMER_FILTERS = {"first_name": text_param(100), "last_name": text_param(100), "account_number": text_param(32),
                    "tier": choice_param(TIERS), "segment": text_param(32), "email": email_param,
                    "phone": phone_param}
CONSENT_FILTERS = {"customer_id": id_param, "purpose": choice_param(PURPOSES), "channel": choice_param(CHANNELS),
                   "granted": bool_param}
NEW_CUSTOMER_FIELDS = ("account_number", "first_name", "last_name", "tier", "segment", "preferred_language",
                       "customer_since", "churn_risk", "contact_points")
CONTACT_POINT_FIELDS = ("kind", "value", "verified", "primary")
CONSENT_FIELDS = ("purpose", "channel", "granted", "source")


def customer_json(customer: Customer) -> dict:
    points = sorted(customer.contact_points, key=lambda p: (p.kind, not p.is_primary, p.id))
    return {**row_as_json(customer), "contact_points": [row_as_json(point) for point in points]}


def _region(request: web.Request) -> str:
    return request.app[SETTINGS].crm.default_region


def _profile(body: Body, *, required: bool) -> dict:
    """The customer fields of a create (names required) or a change (only those given)."""
    values = {"account_number": body.text("account_number", 32, required=required),
              "first_name": body.text("first_name", 100, required=required),
              "last_name": body.text("last_name", 100, required=required),
              "tier": body.choice("tier", TIERS), "segment": body.text("segment", 32, nullable=True),
              "preferred_language": body.text("preferred_language", 8), "churn_risk": body.boolean("churn_risk")}
    if values["preferred_language"] is not None:
        values["preferred_language"] = language_tag(values["preferred_language"])
    if values["tier"] is not None:
        values["tier"] = ServiceTier(values["tier"])
    return {name: value for name, value in values.items() if name in body}


def _customer_since(body: Body) -> datetime | None:
    since = body.day("customer_since")
    if since is None:
        return None
    if since > datetime.now(UTC).date():
        raise body.refuse("customer_since", f"{since} is in the future")
    return datetime.combine(since, time(), UTC)


def _contact_point(body: Body) -> NewContactPoint:
    return NewContactPoint(body.choice("kind", KINDS, required=True), body.text("value", MAX_EMAIL, required=True),
                           bool(body.boolean("verified")), body.boolean("primary"))


@api_role(*MANAGERS)
async def create_customer(request: web.Request) -> web.Response:
    body = await Body.read(request, NEW_CUSTOMER_FIELDS)
    values = {**_profile(body, required=True), "created_at": _customer_since(body)}
    points = [_contact_point(Body(item, CONTACT_POINT_FIELDS, f"contact_points[{n}]."))
              for n, item in enumerate(body.objects("contact_points", required=True))]
    customer = await customers.create_customer(request.app[SERVICES].sessions, values, points, _region(request),
                                               access(request))
    return web.json_response(customer_json(customer), status=201)


@api_role(*MANAGERS)
async def update_customer(request: web.Request) -> web.Response:
    body = await Body.read(request, customers.CUSTOMER_FIELDS)
    changes = _profile(body, required=False)
    if "legal_hold" in body:
        if request[ACTOR].role is not Role.ADMIN:
            return json_error(403, "legal_hold: only an admin sets or lifts a legal hold", "forbidden")
        changes["legal_hold"] = body.boolean("legal_hold")
    customer = await customers.update_customer(request.app[SERVICES].sessions,
                                               path_id(request, "customer_id", "customer"), changes, access(request))
    return web.json_response(customer_json(customer))


@api_role(*MANAGERS)
async def add_contact_point(request: web.Request) -> web.Response:
    new = _contact_point(await Body.read(request, CONTACT_POINT_FIELDS))
    point = await customers.add_contact_point(request.app[SERVICES].sessions,
                                              path_id(request, "customer_id", "customer"), new, _region(request),
                                              access(request))
    return web.json_response(row_as_json(point), status=201)


@api_role(*MANAGERS)
async def change_contact_point(request: web.Request) -> web.Response:
    body = await Body.read(request, ("value", "verified", "primary"))
    changes = {"value": body.text("value", MAX_EMAIL), "verified": body.boolean("verified"),
               "primary": body.boolean("primary")}
    point = await customers.change_contact_point(
        request.app[SERVICES].sessions, path_id(request, "contact_point_id", "contact_point"),
        {name: value for name, value in changes.items() if name in body}, _region(request), access(request))
    return web.json_response(row_as_json(point))


@api_role(*EVERYONE)
async def record_consent(request: web.Request) -> web.Response:
    body = await Body.read(request, CONSENT_FIELDS)
    row = await consent.record_consent(
        request.app[SERVICES].sessions, path_id(request, "customer_id", "customer"),
        body.choice("purpose", PURPOSES, required=True), body.choice("channel", CHANNELS, required=True),
        body.boolean("granted", required=True), body.text("source", 64) or "agent", access(request))
    return web.json_response(row_as_json(row), status=201)


def add_customer_routes(app: web.Application) -> None:
    customer = r"/api/customers/{customer_id:\d+}"
    app.router.add_get("/api/customers", search_route(CUSTOMERS, CUSTOMER_FILTERS, EVERYONE))
    app.router.add_post("/api/customers", create_customer)
    app.router.add_get(customer, one_route(CUSTOMERS, customer_json, EVERYONE))
    app.router.add_patch(customer, update_customer)
    app.router.add_get(f"{customer}/contact-points", customer_records_route(CONTACT_POINTS, EVERYONE))
    app.router.add_post(f"{customer}/contact-points", add_contact_point)
    app.router.add_patch(r"/api/contact-points/{contact_point_id:\d+}", change_contact_point)
    app.router.add_get(f"{customer}/consents", customer_records_route(CONSENTS, EVERYONE))
    app.router.add_post(f"{customer}/consents", record_consent)
    app.router.add_get("/api/consents", search_route(CONSENTS, CONSENT_FILTERS, MANAGERS))
