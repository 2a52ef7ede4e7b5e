"""The API's tickets: everyone opens them and works their own; supervisors and admins work anyone's."""

from __future__ import annotations

from aiohttp import web

from contactcentre.crm import tickets
from contactcentre.crm.models import MAX_ID, Ticket, TicketStatus, row_as_json
from contactcentre.crm.tickets import NEW_TICKET_FIELDS, PRIORITIES, TICKET_CHANGES, TICKETS
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
    id_param,
    one_route,
    path_id,
    search_route,
)
from contactcentre.web.keys import SERVICES

STATUSES = tuple(status.value for status in TicketStatus)
TICKET_FILTERS = {"customer_id": id_param, "status": choice_param(STATUSES), "priority": choice_param(PRIORITIES),
                  "owner_id": id_param, "overdue": bool_param}
MAX_NOTE = 10_000


def ticket_json(ticket: Ticket) -> dict:
    return {**row_as_json(ticket), "history": [row_as_json(event) for event in ticket.history]}


@api_role(*EVERYONE)
async def create_ticket(request: web.Request) -> web.Response:
    body = await Body.read(request, NEW_TICKET_FIELDS)
    fields = {"subject": body.text("subject", 200, required=True), "priority": body.choice("priority", PRIORITIES),
              "owner_id": body.integer("owner_id", 1, MAX_ID, nullable=True),
              "sla_policy": body.text("sla_policy", 64, nullable=True),
              "first_response_due": body.time("first_response_due"), "resolve_due": body.time("resolve_due")}
    fields["priority"] = fields["priority"] or "normal"
    ticket = await tickets.create_ticket(request.app[SERVICES].sessions, path_id(request, "customer_id", "customer"),
                                         fields, access(request))
    return web.json_response(ticket_json(ticket), status=201)


@api_role(*EVERYONE)
async def change_ticket(request: web.Request) -> web.Response:
    body = await Body.read(request, TICKET_CHANGES)
    changes = {"status": body.choice("status", STATUSES), "priority": body.choice("priority", PRIORITIES),
               "owner_id": body.integer("owner_id", 1, MAX_ID, nullable=True), "note": body.text("note", MAX_NOTE)}
    ticket = await tickets.change_ticket(
        request.app[SERVICES].sessions, path_id(request, "ticket_id", "ticket"),
        {name: value for name, value in changes.items() if name in body}, access(request),
        any_owner=request[ACTOR].role in MANAGERS)
    return web.json_response(ticket_json(ticket))


def add_ticket_routes(app: web.Application) -> None:
    app.router.add_get("/api/tickets", search_route(TICKETS, TICKET_FILTERS, EVERYONE))
    app.router.add_get(r"/api/tickets/{ticket_id:\d+}", one_route(TICKETS, ticket_json, EVERYONE))
    app.router.add_patch(r"/api/tickets/{ticket_id:\d+}", change_ticket)
    app.router.add_get(r"/api/customers/{customer_id:\d+}/tickets", customer_records_route(TICKETS, EVERYONE))
    app.router.add_post(r"/api/customers/{customer_id:\d+}/tickets", create_ticket)
