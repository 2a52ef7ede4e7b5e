"""HTTP routes: login, the agent console page, health, static files, and the JSON API with its OpenAPI file."""

from __future__ import annotations

import logging
from pathlib import Path

from aiohttp import web
from jinja2 import Environment, FileSystemLoader, select_autoescape

from contactcentre.crm.accounts import authenticate, get_agent
from contactcentre.crm.models import Role
from contactcentre.web.auth import COOKIE, Identity, SessionSigner
from contactcentre.web.keys import SERVICES, SETTINGS, SIGNER, TEMPLATES
from contactcentre.web.callback_routes import add_callback_routes
from contactcentre.web.customer_routes import add_customer_routes
from contactcentre.web.history_routes import add_history_routes
from contactcentre.web.privacy_routes import add_privacy_routes
from contactcentre.web.ticket_routes import add_ticket_routes

log = logging.getLogger(__name__)

WEB_DIR = Path(__file__).resolve().parent.parent.parent / "web"
# Browser libraries installed from the npm registry by web/package.json, served as files.
VENDOR_FILES = {
    "socket.io.min.js": WEB_DIR / "node_modules" / "socket.io-client" / "dist" / "socket.io.min.js",
}
OPENAPI = Path(__file__).resolve().parent / "openapi.yaml"
MAX_LOGIN_FIELD = 200
IDENTITY = web.RequestKey("identity", Identity)


def templates() -> Environment:
    return Environment(loader=FileSystemLoader(WEB_DIR / "templates"), autoescape=select_autoescape(["html"]))


def render(request: web.Request, name: str, status: int = 200, **context: object) -> web.Response:
    html = request.app[TEMPLATES].get_template(name).render(**context)
    return web.Response(text=html, status=status, content_type="text/html")


def identity_of(request: web.Request) -> Identity | None:
    signer: SessionSigner = request.app[SIGNER]
    return signer.verify(request.cookies.get(COOKIE))


def require_role(*roles: Role):
    """Route decorator: a login with one of `roles`, else the login page (pages) or 401/403."""
    def decorate(handler):
        async def wrapped(request: web.Request) -> web.StreamResponse:
            identity = identity_of(request)
            if identity is None:
                raise web.HTTPFound("/login")
            if identity.role not in roles:
                raise web.HTTPForbidden(text=f"this page needs the role {' or '.join(r.value for r in roles)}")
            request[IDENTITY] = identity
            return await handler(request)
        return wrapped
    return decorate


async def index(request: web.Request) -> web.StreamResponse:
    raise web.HTTPFound("/console" if identity_of(request) else "/login")


async def login_page(request: web.Request) -> web.Response:
    return render(request, "login.html", error=None, username="")


async def login(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    username = form.get("username", "")
    password = form.get("password", "")
    if not isinstance(username, str) or not isinstance(password, str) or not username or not password:
        return render(request, "login.html", status=400, error="Enter your user name and password.", username="")
    if len(username) > MAX_LOGIN_FIELD or len(password) > MAX_LOGIN_FIELD:
        return render(request, "login.html", status=400, error="User name or password is too long.", username="")
    agent = await authenticate(request.app[SERVICES].sessions, username, password)
    if agent is None:
        log.info("login refused", extra={"username": username})
        return render(request, "login.html", status=401, error="Wrong user name or password.", username=username)
    response = web.HTTPFound("/console")
    settings = request.app[SETTINGS]
    response.set_cookie(COOKIE, request.app[SIGNER].issue(agent.id, agent.role), httponly=True, samesite="Lax",
                        max_age=settings.web.session_max_age, secure=request.secure, path="/")
    log.info("login", extra={"agent_id": agent.id})
    raise response


async def logout(request: web.Request) -> web.StreamResponse:
    response = web.HTTPFound("/login")
    response.del_cookie(COOKIE, path="/")
    raise response


@require_role(Role.AGENT)
async def console(request: web.Request) -> web.Response:
    agent = await get_agent(request.app[SERVICES].sessions, request[IDENTITY].user_id)
    if agent is None:
        raise web.HTTPFound("/login")
    return render(request, "console.html", agent=agent, dispositions=request.app[SERVICES].router.dispositions)


async def vendor(request: web.Request) -> web.FileResponse:
    path = VENDOR_FILES.get(request.match_info["name"])
    if path is None or not path.exists():
        raise web.HTTPNotFound(text="browser library not installed: run npm ci in web/")
    return web.FileResponse(path)


async def openapi(request: web.Request) -> web.Response:
    """The API's description, without a login: tools read it before anyone signs in."""
    return web.Response(text=OPENAPI.read_text(encoding="utf-8"), content_type="application/yaml")


async def health(request: web.Request) -> web.Response:
    status = request.app[SERVICES].health
    return web.json_response(status, status=200 if status["ok"] else 503)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/", index)
    app.router.add_get("/login", login_page)
    app.router.add_post("/login", login)
    app.router.add_post("/logout", logout)
    app.router.add_get("/console", console)
    app.router.add_get("/health", health)
    app.router.add_get("/static/vendor/{name}", vendor)
    app.router.add_get("/api/openapi.yaml", openapi)
    add_customer_routes(app)
    add_ticket_routes(app)
    add_history_routes(app)
    add_privacy_routes(app)
    add_callback_routes(app)
    app.router.add_static("/static/", WEB_DIR / "static")
