"""Helpers the tests share: importable by name, unlike a conftest.py."""

from __future__ import annotations

import asyncio
import functools
import json
from collections import defaultdict
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import socketio
from aiohttp import web
from sqlalchemy import JSON, String, Text, select

from contactcentre.app import create_app
from contactcentre.config import AgiSettings, AmiSettings, Settings
from contactcentre.crm.accounts import hash_password
from contactcentre.crm.models import (
    Agent,
    Base,
    Consent,
    ContactPoint,
    Customer,
    DoNotCall,
    Interaction,
    Role,
    ServiceTier,
    Ticket,
)
from contactcentre.services import Services
from contactcentre.telephony.agi.server import AgiServer
from contactcentre.telephony.ami.client import AmiClient
from contactcentre.telephony.simulator import dialplan, queues_conf
from contactcentre.telephony.simulator.pbx import SimulatedPbx
from contactcentre.web.keys import SERVICES
from tests.captures import CAPTURES

PASSWORD = "correct horse battery"  # every agent the tests add signs in with it


@functools.cache
def password_hash() -> str:
    """PASSWORD's argon2 hash, made once: at a seventh of a second each, hashing per agent slowed every test."""
    return hash_password(PASSWORD)


def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'store.db'}"


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
    app: web.Application
    consoles: list = field(default_factory=list)
    logins: dict[str, str] = field(default_factory=dict)  # user name -> session cookie, one login each

    @property
    def sim(self):
        return self.services.simulator

    async def add_agent(self, username: str, device: str, role: Role = Role.AGENT, name: str | None = None):
        async with self.services.sessions() as session, session.begin():
            agent = Agent(username=username, display_name=name or username.title(), password_hash=password_hash(),
                          role=role, device=device)
            session.add(agent)
        return agent

    async def login(self, username: str, password: str = PASSWORD) -> aiohttp.ClientResponse:
        async with aiohttp.ClientSession() as http:
            return await http.post(f"{self.base_url}login", data={"username": username, "password": password},
                                   allow_redirects=False)

    async def cookie(self, username: str, password: str = PASSWORD) -> str:
        response = await self.login(username, password)
        assert response.status == 302, response.status
        morsel = response.cookies["cc_session"]
        return f"cc_session={morsel.value}"

    async def close_consoles(self) -> None:
        """A failed test must not leave sockets that stall the server's shutdown."""
        for console in self.consoles:
            if console.sio.connected:
                await console.close()

    async def console(self, username: str) -> ConsoleClient:
        client = ConsoleClient(self.base_url, await self.cookie(username))
        await client.connect()
        self.consoles.append(client)
        return client



async def until(predicate, timeout: float = 10.0) -> None:
    """Wait (polling every 20 ms) until `predicate()` is true; TimeoutError after `timeout` seconds."""
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.02)

@asynccontextmanager
async def simulator_with_script(script, *, auto_answer: float | None = 0.05, command_timeout: float = 30,
                                recorder=None, **pbx_options):
    """A FastAGI server running `script` for every call, the PBX simulator dialling into it, and an
    AMI client logged in to the simulator: yields (simulator, client, events as read off the wire).
    `pbx_options` go to SimulatedPbx (endpoints, dialplan, queues); `recorder` (a FlightRecorder)
    keeps the raw AMI stream the client reads."""
    server = AgiServer(AgiSettings(host="127.0.0.1", port=0, command_timeout=command_timeout), {"inbound": script})
    await server.start()
    sim = SimulatedPbx("cc", "s", f"agi://127.0.0.1:{server.port}/inbound", auto_answer=auto_answer, **pbx_options)
    await sim.start("127.0.0.1", 0)
    events: list[tuple[str, list[tuple[str, str]]]] = []
    ami = AmiClient(AmiSettings(host="127.0.0.1", port=sim.ami.port, username="cc", secret="s"))
    ami.add_handler(lambda message: events.append((message.name, message.headers)))
    if recorder is not None:
        ami.recorder = recorder
    await ami.start()
    try:
        yield sim, ami, events
        await ami.send("Ping")  # every event sent before it has been read
    finally:
        await ami.close()
        await sim.close()
        await server.close()


async def api(stack: Stack, method: str, path: str, user: str | None = None, **kwargs) -> tuple[int, object]:
    """Call the JSON API as `user` (None: without a login); the status and the JSON body (else the text)."""
    headers = dict(kwargs.pop("headers", {}))
    if user:
        if user not in stack.logins:
            stack.logins[user] = await stack.cookie(user)
        headers["Cookie"] = stack.logins[user]
    url = f"{stack.base_url}{path.lstrip('/')}"
    async with aiohttp.ClientSession() as http, http.request(method, url, headers=headers, allow_redirects=False,
                                                             **kwargs) as response:
        body = await response.json() if response.content_type == "application/json" else await response.text()
        return response.status, body


async def start_stack(aiohttp_server, database_url: str, **overrides) -> Stack:
    """The app on a real port, with the PBX simulator, once its AMI link is up."""
    app = create_app(stack_settings(database_url, **overrides))
    server = await aiohttp_server(app)
    services = app[SERVICES]
    await services.ami.wait_connected(5)
    return Stack(str(server.make_url("/")), services, app)


async def add_customer(sessions, first: str, last: str, phone: str, tier: ServiceTier,
                       notes: tuple[str, ...] = ()) -> Customer:
    """A customer reachable on `phone`, with one past interaction per note (the first note is the latest)."""
    now = datetime.now(UTC)
    async with sessions() as session, session.begin():
        customer = Customer(account_number=f"AC-{phone[-6:]}", first_name=first, last_name=last, tier=tier,
                            created_at=now - timedelta(days=400))
        session.add(customer)
        await session.flush()
        session.add(ContactPoint(customer_id=customer.id, kind="phone", value=phone))
        for k, note in enumerate(notes):
            session.add(Interaction(call_id=f"old-{phone}-{k}", customer_id=customer.id, caller_number=phone,
                                    arrived_at=now - timedelta(days=10 + k), disposition="resolved", notes=note))
    return customer


async def new_interactions(sessions) -> list[Interaction]:
    async with sessions() as session:
        return list((await session.scalars(select(Interaction).where(~Interaction.call_id.like("old-%")))).all())


async def stored_text(sessions) -> list[str]:
    """Every value of every text and JSON column of every table, as text."""
    values = []
    async with sessions() as session:
        for table in Base.metadata.tables.values():
            columns = [c for c in table.columns if isinstance(c.type, String | Text | JSON)]
            for row in (await session.execute(select(*columns))).all():
                values += [v if isinstance(v, str) else json.dumps(v) for v in row if v is not None]
    return values


def capture_pbx(*, helpdesk: bool = True) -> dict:
    """SimulatedPbx options for the PBX of ../shared/ami-captures: its extensions.conf and queues.conf and
    agent1..agent4; `helpdesk=False` for the captures made before that queue was added (README)."""
    config = CAPTURES / "asterisk-config" / "pbx"
    queues = queues_conf.load(config / "queues.conf")
    if not helpdesk:
        queues = queues_conf.QueuesConf(tuple(q for q in queues.queues if q.name != "helpdesk"), queues.general)
    return {"endpoints": {"agent1", "agent2", "agent3", "agent4"},
            "dialplan": dialplan.load(config / "extensions.conf"), "queues": queues}


async def no_agi(session) -> None:
    """A FastAGI script for simulators whose calls never reach FastAGI (queue DIDs)."""


async def until(predicate, timeout: float = 5.0, step: float = 0.01) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(step)



async def add_consent(sessions, customer_id: int, purpose: str, granted: bool, *, at: datetime | None = None,
                      source: str = "agent") -> None:
    async with sessions() as session, session.begin():
        session.add(Consent(customer_id=customer_id, purpose=purpose, channel="phone", granted=granted,
                            at=at or datetime.now(UTC), source=source))


async def add_do_not_call(sessions, number: str, reason: str) -> None:
    async with sessions() as session, session.begin():
        session.add(DoNotCall(number=number, added_at=datetime.now(UTC), reason=reason, source="agent"))


async def add_open_ticket(sessions, customer_id: int, subject: str) -> None:
    now = datetime.now(UTC)
    async with sessions() as session, session.begin():
        session.add(Ticket(customer_id=customer_id, subject=subject, created_at=now, updated_at=now))
