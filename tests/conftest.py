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
