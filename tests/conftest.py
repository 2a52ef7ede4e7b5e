"""Shared fixtures: databases (SQLite and PostgreSQL), and the running stack.

The stack is the real app on a real TCP port with the PBX simulator on its
own AMI port and the FastAGI server on another: every test that uses it goes
over sockets exactly as production does.
"""

from __future__ import annotations

import asyncio
import os
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest
import pytest_asyncio
import socketio
from sqlalchemy.engine import make_url

from contactcentre.app import create_app
from contactcentre.config import Settings
from contactcentre.crm.accounts import create_agent
from contactcentre.crm.models import Role
from contactcentre.crm.store import create_engine, session_factory, upgrade
from contactcentre.services import Services
from contactcentre.web.keys import SERVICES
from tests.support import PASSWORD

POSTGRES_URL = os.environ.get("CC_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")


async def _postgres_reason() -> str | None:
    """None when PostgreSQL answers; else why not (printed as the skip reason)."""
    import asyncpg

    url = make_url(POSTGRES_URL)
    try:
        connection = await asyncio.wait_for(asyncpg.connect(
            host=url.host, port=url.port or 5432, user=url.username, password=url.password,
            database=url.database), timeout=3)
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        return f"PostgreSQL at {url.host}:{url.port} unreachable: {exc.__class__.__name__}: {exc}"
    await connection.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public;")
    await connection.close()
    return None


def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'store.db'}"


@pytest_asyncio.fixture(params=["sqlite", "postgresql"])
async def database_url(request, tmp_path) -> str:
    """A fresh, migrated store on each database this project supports."""
    if request.param == "sqlite":
        url = sqlite_url(tmp_path)
    else:
        reason = await _postgres_reason()
        if reason:
            print(f"\nSKIP PostgreSQL: {reason}")
            pytest.skip(reason)
        url = POSTGRES_URL
    await upgrade(url)
    return url


@pytest_asyncio.fixture
async def sessions(database_url):
    engine = create_engine(database_url)
    yield session_factory(engine)
    await engine.dispose()


def stack_settings(database_url: str, **overrides) -> Settings:
    settings = Settings.load(env={}).with_overrides(
        database={"url": database_url},
        pbx={"mode": "simulator"},
        agi={"host": "127.0.0.1", "port": 0},
        simulator={"ami_port": 0, "talk_limit": 120.0, "patience": 120.0},
        web={"session_secret": "test-only-secret"},
        routing={"ring_timeout": 20},
    )
    return settings.with_overrides(**overrides) if overrides else settings


class ConsoleClient:
    """A socket.io client as the agent's browser would be, with every event queued."""

    def __init__(self, base_url: str, cookie: str):
        self.base_url = base_url
        self.cookie = cookie
        self.sio = socketio.AsyncClient(reconnection=False)
        self.events: dict[str, asyncio.Queue] = defaultdict(asyncio.Queue)
        self.received: list[str] = []  # event names in arrival order, shared with test taps
        for name in ("agent_state", "screen_pop", "call_state"):
            self.sio.on(name, self._queue(name))

    def _queue(self, name):
        async def put(data):
            self.received.append(name)
            await self.events[name].put(data)
        return put

    async def connect(self) -> None:
        await self.sio.connect(self.base_url, headers={"Cookie": self.cookie}, transports=["websocket"],
                               wait_timeout=5)

    async def call(self, event: str, data: dict | None = None) -> dict:
        return await self.sio.call(event, data or {}, timeout=10)

    async def next(self, event: str, timeout: float = 10.0) -> dict:
        return await asyncio.wait_for(self.events[event].get(), timeout)

    async def wait_state(self, state: str, timeout: float = 10.0) -> dict:
        async with asyncio.timeout(timeout):
            while True:
                message = await self.events["agent_state"].get()
                if message["state"] == state:
                    return message

    async def wait_call_state(self, state: str, timeout: float = 10.0) -> dict:
        async with asyncio.timeout(timeout):
            while True:
                message = await self.events["call_state"].get()
                if message["state"] == state:
                    return message

    async def close(self) -> None:
        await self.sio.disconnect()


@dataclass
class Stack:
    base_url: str
    services: Services
    consoles: list = field(default_factory=list)

    @property
    def sim(self):
        return self.services.simulator

    async def add_agent(self, username: str, device: str, role: Role = Role.AGENT, name: str | None = None):
        return await create_agent(self.services.sessions, username, PASSWORD, name or username.title(), device, role)

    async def login(self, username: str, password: str = PASSWORD) -> aiohttp.ClientResponse:
        async with aiohttp.ClientSession() as http:
            return await http.post(f"{self.base_url}login", data={"username": username, "password": password},
                                   allow_redirects=False)

    async def cookie(self, username: str, password: str = PASSWORD) -> str:
        response = await self.login(username, password)
        assert response.status == 302, response.status
        morsel = response.cookies["cc_session"]
        return f"cc_session={morsel.value}"

    async def console(self, username: str) -> ConsoleClient:
        client = ConsoleClient(self.base_url, await self.cookie(username))
        await client.connect()
        self.consoles.append(client)
        return client


@pytest_asyncio.fixture
async def stack(aiohttp_server, tmp_path):
    """The server, the PBX simulator and a SQLite store (CC_DATABASE_URL picks another)."""
    url = os.environ.get("CC_DATABASE_URL") or sqlite_url(tmp_path)
    app = create_app(stack_settings(url))
    server = await aiohttp_server(app)
    services = app[SERVICES]
    await services.ami.wait_connected(5)
    stack = Stack(str(server.make_url("/")), services)
    yield stack
    for console in stack.consoles:  # a failed test must not leave sockets that stall shutdown
        if console.sio.connected:
            await console.close()
