"""Admin API for customers' privacy rights (export, erasure) and the audit trail.

The audit trail is append-only here: its path answers GET alone, so PUT, PATCH
and DELETE get 405.
"""

from __future__ import annotations

from aiohttp import web
from sqlalchemy import func, select

from contactcentre.crm.models import AuditLog, Role, row_as_json
from contactcentre.crm.privacy import erase_customer, export_customer
from contactcentre.crm.records import Page
from contactcentre.web.api import (
    ACTOR,
    MANAGERS,
    Body,
    api_role,
    page_body,
    page_params,
    path_id,
    read_filters,
    text_param,
)
from contactcentre.web.keys import SERVICES

MAX_REASON = 255  # the audit row's reason column
AUDIT_FILTERS = {"entity": text_param(32), "entity_id": text_param(64), "action": text_param(32)}


@api_role(Role.ADMIN)
async def export(request: web.Request) -> web.Response:
    customer_id = path_id(request, "customer_id", "customer")
    return web.json_response(await export_customer(request.app[SERVICES].sessions, customer_id,
                                                   request[ACTOR].user_id))


@api_role(Role.ADMIN)
async def erase(request: web.Request) -> web.Response:
    reason = (await Body.read(request, ("reason",))).text("reason", MAX_REASON, required=True)
    customer_id = path_id(request, "customer_id", "customer")
    erased_at = await erase_customer(request.app[SERVICES].sessions, customer_id, request[ACTOR].user_id, reason)
    return web.json_response({"customer_id": customer_id, "erased_at": erased_at.isoformat()})


@api_role(*MANAGERS)
async def audit(request: web.Request) -> web.Response:
    limit, offset = page_params(request)
    conditions = [getattr(AuditLog, name) == value for name, value in read_filters(request, AUDIT_FILTERS).items()]
    async with request.app[SERVICES].sessions() as session:
        total = await session.scalar(select(func.count(AuditLog.id)).where(*conditions))
        entries = (await session.scalars(select(AuditLog).where(*conditions)
                                         .order_by(AuditLog.at.desc(), AuditLog.id.desc())
                                         .limit(limit).offset(offset))).all()
    return web.json_response(page_body(Page(list(entries), total, limit, offset), row_as_json))


def add_privacy_routes(app: web.Application) -> None:
    app.router.add_get(r"/api/admin/customers/{customer_id:\d+}/export", export)
    app.router.add_post(r"/api/admin/customers/{customer_id:\d+}/erase", erase)
    app.router.add_get("/api/admin/audit", audit)
