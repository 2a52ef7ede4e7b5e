"""Typed keys of what the app holds; set once in app.py before it starts."""

from __future__ import annotations

from aiohttp import web
from jinja2 import Environment

from contactcentre.config import Settings
from contactcentre.services import Services
from contactcentre.web.auth import SessionSigner

SETTINGS = web.AppKey("settings", Settings)
SERVICES = web.AppKey("services", Services)
SIGNER = web.AppKey("signer", SessionSigner)
TEMPLATES = web.AppKey("templates", Environment)
