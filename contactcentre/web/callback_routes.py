"""Callbacks over the REST API, for agents and supervisors: schedule one, search them.

Scheduling checks consent and do-not-call at once (403 `dial-refused` with the
reason); the callback dialler checks again when it is due. The console's
`schedule_callback` event reads its message with the same reader.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from aiohttp import web

from contactcentre.crm.audit import Access
from contactcentre.crm.callbacks import CALLBACKS, MAX_NOTE, CallbackStore
from contactcentre.crm.consent import DialRefused
from contactcentre.crm.fields import phone_number
from contactcentre.crm.models import MAX_ID, CallbackStatus, Role, row_as_json
from contactcentre.web.api import Body, access, api_role, choice_param, id_param, json_object, search_route
from contactcentre.web.keys import SERVICES, SETTINGS

ROLES = (Role.AGENT, Role.SUPERVISOR)
FIELDS = ("number", "due_at", "note", "customer_id")
FILTERS = {"status": choice_param(s.value for s in CallbackStatus), "customer_id": id_param}


@dataclass(frozen=True)
class CallbackRequest:
    number: str  # E.164
    due_at: datetime  # UTC
    note: str | None
    customer_id: int | None


def read_callback_request(data: dict, region: str) -> CallbackRequest:
    """The fields of a callback request; a wrong one raises BadRequest (or FieldError) naming it."""
    body = Body(data, FIELDS)
    if "due_at" not in body:
        raise body.refuse("due_at", "required")
    return CallbackRequest(phone_number(body.text("number", 64, required=True), region, "number"),
                           body.time("due_at", nullable=False), body.text("note", MAX_NOTE, nullable=True),
                           body.integer("customer_id", 1, MAX_ID, nullable=True))


async def schedule(store: CallbackStore, wanted: CallbackRequest, who: Access) -> dict:
    callback = await store.schedule(wanted.number, wanted.due_at, wanted.note, who, customer_id=wanted.customer_id)
    return row_as_json(callback)


@api_role(*ROLES)
async def create(request: web.Request) -> web.Response:
    wanted = read_callback_request(await json_object(request), request.app[SETTINGS].crm.default_region)
    try:
        callback = await schedule(request.app[SERVICES].callbacks, wanted, access(request))
    except DialRefused as exc:
        return web.json_response({"error": str(exc), "id": exc.error_id, "reason": exc.reason}, status=exc.status)
    return web.json_response(callback, status=201)


def add_callback_routes(app: web.Application) -> None:
    app.router.add_post("/api/callbacks", create)
    app.router.add_get("/api/callbacks", search_route(CALLBACKS, FILTERS, ROLES))
