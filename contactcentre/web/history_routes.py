"""The API's interactions, transactions and survey responses.

Everyone opens one customer's history; searching across customers (by agent,
queue, date, survey question) is for supervisors and admins. An ended call's
wrap-up may be completed by the agent who took it, or by a supervisor.
"""

from __future__ import annotations

from aiohttp import web

from contactcentre.crm.history import INTERACTIONS, SURVEY_RESPONSES, TRANSACTIONS, complete_wrap_up
from contactcentre.crm.importer import TRANSACTION_KINDS
from contactcentre.crm.models import Interaction, row_as_json
from contactcentre.web.api import (
    ACTOR,
    EVERYONE,
    MANAGERS,
    Body,
    access,
    api_role,
    choice_param,
    customer_records_route,
    id_param,
    one_route,
    path_id,
    search_route,
    text_param,
    time_param,
)
from contactcentre.web.keys import SERVICES, SETTINGS

INTERACTION_FILTERS = {"customer_id": id_param, "agent_id": id_param, "queue": text_param(64), "from": time_param,
                       "to": time_param, "disposition": text_param(64)}
TRANSACTION_FILTERS = {"customer_id": id_param, "kind": choice_param(TRANSACTION_KINDS), "reference": text_param(64)}
SURVEY_FILTERS = {"customer_id": id_param, "question": text_param(64), "call_id": text_param(64)}
MAX_NOTE = 10_000  # one note, as the console's wrap-up form takes


def interaction_json(call: Interaction) -> dict:
    return {**row_as_json(call), "legs": [row_as_json(leg) for leg in call.legs]}


@api_role(*EVERYONE)
async def wrap_up(request: web.Request) -> web.Response:
    body = await Body.read(request, ("disposition", "note"))
    services = request.app[SERVICES]
    call = await complete_wrap_up(
        services.sessions, path_id(request, "interaction_id", "interaction"),
        body.choice("disposition", request.app[SETTINGS].routing.dispositions), body.text("note", MAX_NOTE),
        access(request), live_calls=services.router.calls, any_agent=request[ACTOR].role in MANAGERS)
    return web.json_response(interaction_json(call))


def add_history_routes(app: web.Application) -> None:
    customer = r"/api/customers/{customer_id:\d+}"
    app.router.add_get("/api/interactions", search_route(INTERACTIONS, INTERACTION_FILTERS, MANAGERS))
    app.router.add_get(r"/api/interactions/{interaction_id:\d+}", one_route(INTERACTIONS, interaction_json, EVERYONE))
    app.router.add_patch(r"/api/interactions/{interaction_id:\d+}", wrap_up)
    app.router.add_get(f"{customer}/interactions", customer_records_route(INTERACTIONS, EVERYONE))
    app.router.add_get("/api/transactions", search_route(TRANSACTIONS, TRANSACTION_FILTERS, EVERYONE))
    app.router.add_get(r"/api/transactions/{transaction_id:\d+}", one_route(TRANSACTIONS, row_as_json, EVERYONE))
    app.router.add_get(f"{customer}/transactions", customer_records_route(TRANSACTIONS, EVERYONE))
    app.router.add_get("/api/survey-responses", search_route(SURVEY_RESPONSES, SURVEY_FILTERS, MANAGERS))
    app.router.add_get(f"{customer}/survey-responses", customer_records_route(SURVEY_RESPONSES, EVERYONE))
