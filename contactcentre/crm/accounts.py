"""Users of the console: argon2 password hashes, looked up by user name."""

from __future__ import annotations

import asyncio

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import async_sessionmaker

from contactcentre.crm.models import Agent, Role

_hasher = PasswordHasher()
# Verifying against this when the user does not exist keeps the reply time the
# same for unknown users and wrong passwords.
_DUMMY_HASH = _hasher.hash("not a password")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


async def authenticate(sessions: async_sessionmaker, username: str, password: str) -> Agent | None:
    async with sessions() as session:
        agent = await session.scalar(select(Agent).where(Agent.username == username))
    stored = agent.password_hash if agent else _DUMMY_HASH
    try:
        # argon2 is deliberately slow (tens of ms): keep it off the event loop.
        await asyncio.to_thread(_hasher.verify, stored, password)
    except (VerificationError, InvalidHashError):
        return None
    return agent


async def create_agent(sessions: async_sessionmaker, username: str, password: str, display_name: str,
                       device: str | None, role: Role = Role.AGENT) -> Agent:
    password_hash = await asyncio.to_thread(hash_password, password)
    async with sessions() as session, session.begin():
        agent = Agent(username=username, display_name=display_name, password_hash=password_hash,
                      role=role, device=device)
        session.add(agent)
    return agent


async def get_agent(sessions: async_sessionmaker, agent_id: int) -> Agent | None:
    async with sessions() as session:
        return await session.get(Agent, agent_id)
