"""Shared fixtures: databases (SQLite and PostgreSQL), and the running stack.

The stack is the real app on a real TCP port with the PBX simulator on its
own AMI port and the FastAGI server on another: every test that uses it goes
over sockets exactly as production does.
"""

from __future__ import annotations

import asyncio
import os

import pytest
import pytest_asyncio
from sqlalchemy.engine import make_url

from contactcentre.crm.store import create_engine, session_factory, upgrade
from tests.support import sqlite_url, start_stack

SERVER_URL = make_url(os.environ.get("CC_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"))
# Each test run gets a database of its own beside `test`, so two runs on one
# machine (sessions, CI, a helper) never reset each other's tables.
RUN_DATABASE = f"{SERVER_URL.database}_run{os.getpid()}"
POSTGRES_URL = SERVER_URL.set(database=RUN_DATABASE).render_as_string(hide_password=False)


async def _connect(database: str):
    import asyncpg

    return await asyncio.wait_for(asyncpg.connect(
        host=SERVER_URL.host, port=SERVER_URL.port or 5432, user=SERVER_URL.username,
        password=SERVER_URL.password, database=database), timeout=3)


async def _postgres_reason() -> str | None:
    """None when PostgreSQL answers (the run's database then exists, empty); else why not (the skip reason)."""
    import asyncpg

    try:
        server = await _connect(SERVER_URL.database)
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        return f"PostgreSQL at {SERVER_URL.host}:{SERVER_URL.port} unreachable: {exc.__class__.__name__}: {exc}"
    try:
        if not await server.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", RUN_DATABASE):
            await server.execute(f'CREATE DATABASE "{RUN_DATABASE}"')  # a name we made: digits and a prefix
    finally:
        await server.close()
    connection = await _connect(RUN_DATABASE)
    await connection.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public;")
    await connection.close()
    return None


async def _drop_run_database() -> None:
    import asyncpg

    try:
        server = await _connect(SERVER_URL.database)
    except (OSError, asyncpg.PostgresError, TimeoutError):
        return  # never reached, so nothing was made
    try:
        await server.execute(f'DROP DATABASE IF EXISTS "{RUN_DATABASE}" WITH (FORCE)')
    finally:
        await server.close()


@pytest.fixture(scope="session", autouse=True)
def _run_database():
    yield
    asyncio.run(_drop_run_database())


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


@pytest_asyncio.fixture
async def stack(aiohttp_server, tmp_path):
    """The server, the PBX simulator and a SQLite store (CC_DATABASE_URL picks another)."""
    stack = await start_stack(aiohttp_server, os.environ.get("CC_DATABASE_URL") or sqlite_url(tmp_path))
    yield stack
    await stack.close_consoles()
