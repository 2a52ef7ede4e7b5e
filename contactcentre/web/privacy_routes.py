"""Admin API for customers' privacy rights (export, erasure) and the audit trail.

JSON in and out. Without a login the answer is 401, with the wrong role 403,
both as JSON: these are API calls, not pages to redirect. The audit trail is
append-only here: its path answers GET alone, so PUT, PATCH and DELETE get 405.
"""

from __future__ import annotations

import json

from aiohttp import web
from sqlalchemy import func, select

from contactcentre.crm.models import AuditLog, Role
from contactcentre.crm.privacy import (
    MAX_ID,
    CustomerNotFound,
    ErasureRefused,
    erase_customer,
    export_customer,
    row_as_json,
)
from contactcentre.web.auth import COOKIE, Identity
from contactcentre.web.keys import SERVICES, SIGNER

ACTOR = web.RequestKey("actor", Identity)
AUDIT_PAGE = 50
AUDIT_PAGE_MAX = 500  # one page of the trail, not the whole table in one reply
MAX_REASON = 255  # the audit row's reason column


class BadRequest(web.HTTPBadRequest):
    def __init__(self, field: str, problem: str):
        super().__init__(text=_error(f"{field}: {problem}", "bad-request"), content_type="application/json")


def _error(message: str, error_id: str) -> str:
    return json.dumps({"error": message, "id": error_id})


def api_role(*roles: Role):
    """Route decorator for the JSON API: 401 without a valid login, 403 for a role not in `roles`."""
    def decorate(handler):
        async def wrapped(request: web.Request) -> web.StreamResponse:
            identity = request.app[SIGNER].verify(request.cookies.get(COOKIE))
            if identity is None:
                raise web.HTTPUnauthorized(text=_error("not logged in", "unauthorized"),
                                           content_type="application/json")
            if identity.role not in roles:
                raise web.HTTPForbidden(text=_error(f"needs the role {' or '.join(r.value for r in roles)}",
                                                    "forbidden"), content_type="application/json")
            request[ACTOR] = identity
            return await handler(request)
        return wrapped
    return decorate


def _customer_id(request: web.Request) -> int:
    customer_id = int(request.match_info["customer_id"])  # the route only matches digits
    if customer_id > MAX_ID:
        raise _not_found(CustomerNotFound(customer_id))
    return customer_id


def _not_found(exc: CustomerNotFound) -> web.HTTPNotFound:
    return web.HTTPNotFound(text=_error(str(exc), exc.error_id), content_type="application/json")


@api_role(Role.ADMIN)
async def export(request: web.Request) -> web.Response:
    try:
        bundle = await export_customer(request.app[SERVICES].sessions, _customer_id(request), request[ACTOR].user_id)
    except CustomerNotFound as exc:
        raise _not_found(exc) from None
    return web.json_response(bundle)


@api_role(Role.ADMIN)
async def erase(request: web.Request) -> web.Response:
    reason = (await _json_object(request)).get("reason")
    if reason is None:
        raise BadRequest("reason", "required")
    if not isinstance(reason, str):
        raise BadRequest("reason", f"expected a string, got {type(reason).__name__}")
    if not reason.strip() or len(reason) > MAX_REASON:
        raise BadRequest("reason", f"expected 1 to {MAX_REASON} characters")
    customer_id = _customer_id(request)
    try:
        erased_at = await erase_customer(request.app[SERVICES].sessions, customer_id, request[ACTOR].user_id, reason)
    except CustomerNotFound as exc:
        raise _not_found(exc) from None
    except ErasureRefused as exc:
        raise web.HTTPConflict(text=_error(str(exc), exc.error_id), content_type="application/json") from None
    return web.json_response({"customer_id": customer_id, "erased_at": erased_at.isoformat()})


@api_role(Role.ADMIN, Role.SUPERVISOR)
async def audit(request: web.Request) -> web.Response:
    limit = _query_int(request, "limit", AUDIT_PAGE, 1, AUDIT_PAGE_MAX)
    offset = _query_int(request, "offset", 0, 0, None)
    conditions = [getattr(AuditLog, name) == request.query[name]
                  for name in ("entity", "entity_id", "action") if name in request.query]
    async with request.app[SERVICES].sessions() as session:
        total = await session.scalar(select(func.count(AuditLog.id)).where(*conditions))
        entries = (await session.scalars(select(AuditLog).where(*conditions)
                                         .order_by(AuditLog.at.desc(), AuditLog.id.desc())
                                         .limit(limit).offset(offset))).all()
    return web.json_response({"entries": [row_as_json(entry) for entry in entries], "total": total, "limit": limit,
                              "offset": offset})


async def _json_object(request: web.Request) -> dict:
    try:
        body = await request.json()
    except ValueError:
        raise BadRequest("body", "expected a JSON object") from None
    if not isinstance(body, dict):
        raise BadRequest("body", "expected a JSON object")
    return body


def _query_int(request: web.Request, name: str, default: int, low: int, high: int | None) -> int:
    text = request.query.get(name)
    if text is None:
        return default
    if not text.isdigit() or int(text) < low or (high is not None and int(text) > high):
        raise BadRequest(name, f"expected a whole number from {low}" + (f" to {high}" if high else ""))
    return int(text)


def add_privacy_routes(app: web.Application) -> None:
    app.router.add_get(r"/api/admin/customers/{customer_id:\d+}/export", export)
    app.router.add_post(r"/api/admin/customers/{customer_id:\d+}/erase", erase)
    app.router.add_get("/api/admin/audit", audit)
