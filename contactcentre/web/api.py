"""What every JSON API route shares: the login and role check, errors as JSON, bodies and query strings read
field by field, paging, and the audit's "why" (the route).

Without a login the answer is 401, with the wrong role 403, both as JSON: these
are API calls, not pages to redirect. Every error under /api/ is a JSON body
`{"error": ..., "id": ...}`, whether a handler, the store or aiohttp itself
(no such route, wrong method, body too large) refused the request.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping
from datetime import UTC, date, datetime

from aiohttp import web

from contactcentre.crm import records
from contactcentre.crm.audit import Access
from contactcentre.crm.exceptions import NotFound, StoreError
from contactcentre.crm.fields import FieldError, email_address, phone_number
from contactcentre.crm.models import MAX_ID, Base, Role, row_as_json
from contactcentre.crm.records import Listing, Page
from contactcentre.web.auth import COOKIE, Identity
from contactcentre.web.keys import SERVICES, SETTINGS, SIGNER

log = logging.getLogger(__name__)

ACTOR = web.RequestKey("actor", Identity)
PAGE = 50
PAGE_MAX = 500  # one page, not the whole table in one reply
EVERYONE = (Role.AGENT, Role.SUPERVISOR, Role.ADMIN)
MANAGERS = (Role.SUPERVISOR, Role.ADMIN)
# What neither database stores in text: NUL (PostgreSQL refuses it) and lone surrogates (not UTF-8).
UNSTORABLE = re.compile(r"[\x00\ud800-\udfff]")

Param = Callable[[str, str, web.Request], object]  # (name, raw value, request) -> the typed value


def _error(message: str, error_id: str) -> str:
    return json.dumps({"error": message, "id": error_id})


def json_error(status: int, message: str, error_id: str, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.Response(status=status, text=_error(message, error_id), content_type="application/json",
                        headers=headers)


class BadRequest(web.HTTPBadRequest):
    def __init__(self, field: str, problem: str):
        super().__init__(text=_error(f"{field}: {problem}", "bad-request"), content_type="application/json")


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


@web.middleware
async def api_errors(request: web.Request, handler) -> web.StreamResponse:
    """Every refusal under /api/ as a JSON error body, and the store's refusals with their status."""
    if not request.path.startswith("/api/"):
        return await handler(request)
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400 or exc.content_type == "application/json":
            raise
        allow = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
        return json_error(exc.status, f"{exc.reason.lower()}: {request.method} {request.path}",
                          exc.reason.lower().replace(" ", "-"), allow)
    except FieldError as exc:
        return json_error(400, f"{exc.field}: {exc.problem}", "bad-request")
    except StoreError as exc:
        return json_error(exc.status, str(exc), exc.error_id)
    except Exception:
        log.exception("API request failed", extra={"method": request.method, "path": request.path})
        return json_error(500, "internal error: the server logged it", "internal")


def access(request: web.Request) -> Access:
    """The audit's who and why: the logged-in user and the route, as `GET /api/customers/{customer_id}`."""
    return Access(request[ACTOR].user_id, f"{request.method} {request.match_info.route.resource.canonical}")


def path_id(request: web.Request, name: str, kind: str) -> int:
    """The id in the path (the route matches digits only); past what ids can be, it names no record."""
    value = int(request.match_info[name])
    if not 1 <= value <= MAX_ID:
        raise NotFound(kind, value)
    return value


# -- JSON bodies --------------------------------------------------------------------------------------------------

async def json_object(request: web.Request) -> dict:
    try:
        body = await request.json()
    except (ValueError, RecursionError):  # RecursionError: arrays nested thousands deep
        raise BadRequest("body", "expected a JSON object") from None
    if not isinstance(body, dict):
        raise BadRequest("body", "expected a JSON object")
    return body


def _type_name(value: object) -> str:
    return "null" if value is None else type(value).__name__


class Body:
    """A JSON object's fields, each read with its type and limits; a wrong one is a 400 naming it."""

    def __init__(self, data: dict, fields: Iterable[str], prefix: str = ""):
        self._data = data
        self._prefix = prefix  # "contact_points[0]." for an object inside the body
        fields = tuple(fields)
        for name in data:
            if name not in fields:
                raise BadRequest(prefix + name, f"unknown field; expected {', '.join(fields)}")

    @classmethod
    async def read(cls, request: web.Request, fields: Iterable[str]) -> Body:
        return cls(await json_object(request), fields)

    def __contains__(self, name: str) -> bool:
        return name in self._data

    def refuse(self, name: str, problem: str) -> BadRequest:
        return BadRequest(self._prefix + name, problem)

    def _value(self, name: str, required: bool, nullable: bool, expected: type | tuple[type, ...],
               what: str) -> object:
        if name not in self._data:
            if required:
                raise self.refuse(name, "required")
            return None
        value = self._data[name]
        if value is None and nullable:
            return None
        if not isinstance(value, expected) or (isinstance(value, bool) and bool not in _types(expected)):
            raise self.refuse(name, f"expected {what}, got {_type_name(value)}")
        return value

    def text(self, name: str, limit: int, *, required: bool = False, nullable: bool = False) -> str | None:
        value = self._value(name, required, nullable, str, "a string")
        if value is None:
            return None
        value = value.strip()
        if not value or len(value) > limit:
            raise self.refuse(name, f"expected 1 to {limit} characters")
        if UNSTORABLE.search(value):
            raise self.refuse(name, "contains a NUL or an unpaired surrogate, which cannot be stored")
        return value

    def integer(self, name: str, low: int, high: int, *, required: bool = False,
                nullable: bool = False) -> int | None:
        value = self._value(name, required, nullable, int, "a whole number")
        if value is not None and not low <= value <= high:
            raise self.refuse(name, f"expected a whole number from {low} to {high}")
        return value

    def boolean(self, name: str, *, required: bool = False) -> bool | None:
        return self._value(name, required, False, bool, "true or false")

    def choice(self, name: str, allowed: Iterable[str], *, required: bool = False) -> str | None:
        value = self._value(name, required, False, str, "a string")
        allowed = tuple(allowed)
        if value is not None and value not in allowed:
            raise self.refuse(name, f"expected one of {', '.join(allowed)}, got {value!r}")
        return value

    def time(self, name: str, *, nullable: bool = True) -> datetime | None:
        value = self._value(name, False, nullable, str, "a date and time")
        return None if value is None else _moment(self._prefix + name, value)

    def day(self, name: str) -> date | None:
        value = self._value(name, False, False, str, "a date")
        if value is None:
            return None
        try:
            return date.fromisoformat(value)
        except ValueError:
            raise self.refuse(name, f"{value!r} is not an ISO date such as 2024-03-01") from None

    def objects(self, name: str, *, required: bool = False) -> list[dict]:
        value = self._value(name, required, False, list, "an array") or []
        for n, item in enumerate(value):
            if not isinstance(item, dict):
                raise self.refuse(f"{name}[{n}]", f"expected an object, got {_type_name(item)}")
        return value


def _types(expected: type | tuple[type, ...]) -> tuple[type, ...]:
    return expected if isinstance(expected, tuple) else (expected,)


def _moment(name: str, value: str) -> datetime:
    """An ISO 8601 date and time, in UTC (without an offset it is read as UTC)."""
    try:
        # RFC 3339 allows a lower-case t and z, which fromisoformat does not read.
        moment = datetime.fromisoformat(value.upper())
        # UTC before it is stored or compared: SQLite keeps the wall-clock time and drops the offset
        return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    except ValueError:
        raise BadRequest(name, f"{value!r} is not an ISO date and time such as 2024-03-01T14:30:00Z") from None
    except OverflowError:  # 0001-01-01T00:00:00+01:00 is a moment before year 1 in UTC
        raise BadRequest(name, f"{value!r} is outside the years 1 to 9999 in UTC") from None


# -- query strings ------------------------------------------------------------------------------------------------

def query_int(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    text = request.query.get(name)
    if text is None:
        return default
    if not text.isascii() or not text.isdigit() or not low <= int(text) <= high:
        raise BadRequest(name, f"expected a whole number from {low} to {high}")
    return int(text)


def page_params(request: web.Request) -> tuple[int, int]:
    # offset stops where ids do: past it no page holds a row, and the databases' integers end not much further
    return query_int(request, "limit", PAGE, 1, PAGE_MAX), query_int(request, "offset", 0, 0, MAX_ID)


def page_body(page: Page, as_json: Callable) -> dict:
    return {"entries": [as_json(row) for row in page.rows], "total": page.total, "limit": page.limit,
            "offset": page.offset}


def read_filters(request: web.Request, params: Mapping[str, Param]) -> dict[str, object]:
    """The filters the query string gives, typed; a bad one is a 400 naming it."""
    return {name: parse(name, request.query[name], request) for name, parse in params.items()
            if name in request.query}


def text_param(limit: int) -> Param:
    def parse(name: str, raw: str, request: web.Request) -> str:
        value = raw.strip()
        if not value or len(value) > limit:
            raise BadRequest(name, f"expected 1 to {limit} characters")
        if UNSTORABLE.search(value):
            raise BadRequest(name, "contains a NUL or an unpaired surrogate")
        return value
    return parse


def id_param(name: str, raw: str, request: web.Request) -> int:
    if not raw.isascii() or not raw.isdigit() or not 1 <= int(raw) <= MAX_ID:
        raise BadRequest(name, f"expected an id, a whole number from 1 to {MAX_ID}")
    return int(raw)


def choice_param(allowed: Iterable[str]) -> Param:
    allowed = tuple(allowed)

    def parse(name: str, raw: str, request: web.Request) -> str:
        if raw not in allowed:
            raise BadRequest(name, f"expected one of {', '.join(allowed)}, got {raw!r}")
        return raw
    return parse


def bool_param(name: str, raw: str, request: web.Request) -> bool:
    if raw not in ("true", "false"):
        raise BadRequest(name, f"expected true or false, got {raw!r}")
    return raw == "true"


def time_param(name: str, raw: str, request: web.Request) -> datetime:
    return _moment(name, raw)


def phone_param(name: str, raw: str, request: web.Request) -> str:
    """A number in any written form, searched for in E.164."""
    return phone_number(raw, request.app[SETTINGS].crm.default_region, name)


def email_param(name: str, raw: str, request: web.Request) -> str:
    return email_address(raw, name)


# -- the read routes every resource has ---------------------------------------------------------------------------

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def search_route(listing: Listing, params: Mapping[str, Param], roles: tuple[Role, ...]) -> Handler:
    """GET a page of the records the query string's filters let through."""
    @api_role(*roles)
    async def search(request: web.Request) -> web.Response:
        limit, offset = page_params(request)
        page = await records.search(request.app[SERVICES].sessions, listing, read_filters(request, params), limit,
                                    offset, access(request))
        return web.json_response(page_body(page, row_as_json))
    return search


def customer_records_route(listing: Listing, roles: tuple[Role, ...]) -> Handler:
    """GET a page of one customer's records of one kind."""
    @api_role(*roles)
    async def of_customer(request: web.Request) -> web.Response:
        limit, offset = page_params(request)
        page = await records.of_customer(request.app[SERVICES].sessions, listing,
                                         path_id(request, "customer_id", "customer"), limit, offset, access(request))
        return web.json_response(page_body(page, row_as_json))
    return of_customer


def one_route(listing: Listing, as_json: Callable[[Base], dict], roles: tuple[Role, ...]) -> Handler:
    """GET one record by the id in the path, with what its listing loads with it."""
    @api_role(*roles)
    async def one(request: web.Request) -> web.Response:
        record_id = path_id(request, f"{listing.entity}_id", listing.entity)
        return web.json_response(as_json(await records.one(request.app[SERVICES].sessions, listing, record_id,
                                                           access(request))))
    return one
