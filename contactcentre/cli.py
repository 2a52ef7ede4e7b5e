"""The `contactcentre` command: demo, serve, db, seed, record, replay, agent, import, customers, privacy."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import logging
import secrets
import sys
from pathlib import Path

from aiohttp import web
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from contactcentre import logs
from contactcentre.config import ConfigError, Settings
from contactcentre.customers_cli import add_customer_commands
from contactcentre.privacy_cli import add_privacy_commands

log = logging.getLogger("contactcentre")

DEMO_AGENTS = [("agent1", "Alice Agent", "PJSIP/agent1"), ("agent2", "Bob Agent", "PJSIP/agent2"),
               ("agent3", "Carol Agent", "PJSIP/agent3"), ("agent4", "Dave Agent", "PJSIP/agent4")]


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "run", None):
        parser.print_help()
        return 2
    try:
        settings = Settings.load(args.config)
    except ConfigError as exc:
        print(f"contactcentre: configuration error: {exc}", file=sys.stderr)
        return 2
    logs.setup(settings.logging.level)
    try:
        return args.run(settings, args) or 0
    except ConfigError as exc:  # found once the parts start: the offers file, say
        print(f"contactcentre: configuration error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="contactcentre", description="Contact centre and CTI server beside Asterisk.")
    parser.add_argument("--config", type=Path, default=None, help="settings file (default: config/contactcentre.toml)")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")

    demo = commands.add_parser("demo", help="server + embedded PBX simulator + SQLite with seeded customers")
    demo.add_argument("--customers", type=int, default=1000, help="customers to seed into an empty store")
    demo.add_argument("--port", type=int, default=None, help="HTTP port (default: server.port)")
    demo.add_argument("--database", default="sqlite+aiosqlite:///demo.db", help="database URL for the demo")
    demo.set_defaults(run=_demo)

    serve = commands.add_parser("serve", help="run the server as configured")
    serve.add_argument("--config", type=Path, default=argparse.SUPPRESS, help="settings file")
    serve.set_defaults(run=_serve)

    db = commands.add_parser("db", help="database schema")
    db_commands = db.add_subparsers(title="db commands", metavar="ACTION")
    upgrade = db_commands.add_parser("upgrade", help="apply migrations up to the newest")
    upgrade.set_defaults(run=_db_upgrade)

    seed = commands.add_parser("seed", help="add demo customers with phone numbers and history")
    seed.add_argument("--customers", type=_positive, required=True, metavar="N")
    seed.add_argument("--no-history", action="store_true", help="no past interactions")
    seed.set_defaults(run=_seed)

    record = commands.add_parser("record", help="flight recorder: write the raw AMI stream with receive times")
    record.add_argument("file", type=Path)
    record.add_argument("--seconds", type=_positive, default=None, help="stop after this long (default: Ctrl+C)")
    record.set_defaults(run=_record)

    replay = commands.add_parser("replay", help="rebuild calls and the day's figures from AMI recordings or captures")
    replay.add_argument("files", type=Path, nargs="+", metavar="FILE",
                        help="recordings or raw captures; several replay as one day with reconnects between")
    replay.add_argument("--json", action="store_true", help="print one JSON object")
    replay.set_defaults(run=_replay)

    agent = commands.add_parser("agent", help="console users")
    agent_commands = agent.add_subparsers(title="agent commands", metavar="ACTION")
    add = agent_commands.add_parser("add", help="add a user; the password is asked for (or read from stdin)")
    add.add_argument("username")
    add.add_argument("--name", required=True, help="display name")
    add.add_argument("--device", help="the agent's phone, e.g. PJSIP/agent1")
    add.add_argument("--role", choices=["agent", "supervisor", "admin"], default="agent")
    add.set_defaults(run=_agent_add)
    add_customer_commands(commands)
    add_privacy_commands(commands)
    return parser


def _positive(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a number above 0, got {text}")
    return value


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    from contactcentre.app import create_app

    web.run_app(create_app(settings), host=settings.server.host, port=settings.server.port,
                print=lambda text: log.info(text.strip().splitlines()[0] if text.strip() else text))
    return 0


def _db_upgrade(settings: Settings, args: argparse.Namespace) -> int:
    from contactcentre.crm.store import upgrade_sync

    upgrade_sync(settings.database.url)
    print(f"database at {_safe_url(settings.database.url)} is up to date")
    return 0


def _seed(settings: Settings, args: argparse.Namespace) -> int:
    asyncio.run(_seed_async(settings.database.url, args.customers, not args.no_history))
    return 0


async def _seed_async(url: str, count: int, history: bool) -> None:
    from contactcentre.crm.seed import seed_customers
    from contactcentre.crm.store import create_engine, session_factory, upgrade

    await upgrade(url)
    engine = create_engine(url)
    try:
        with Progress(TextColumn("seeding customers"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()) as bar:
            task = bar.add_task("seed", total=count)
            await seed_customers(session_factory(engine), count, history=history,
                                 progress=lambda n: bar.advance(task, n))
    finally:
        await engine.dispose()


def _replay(settings: Settings, args: argparse.Namespace) -> int:
    from contactcentre.telephony.recorder import RecordingError, replay

    for path in args.files:
        if not path.is_file():
            print(f"contactcentre: replay: {path}: no such file", file=sys.stderr)
            return 2
    try:
        result = replay(args.files)
    except RecordingError as exc:
        print(f"contactcentre: replay: {exc}", file=sys.stderr)
        return 2
    for warning in result.warnings:
        print(f"contactcentre: replay: warning: {warning}", file=sys.stderr)
    if args.json:
        print(json.dumps(result.as_dict(), sort_keys=True))
        return 0
    print(f"{result.events} events: {result.calls} inbound calls, {result.answered} answered, "
          f"{result.abandoned} abandoned")
    for agent, count in result.agents.items():
        print(f"  {agent}: {count} calls")
    for queue, members in result.queue_members.items():
        print(f"queue {queue}: " + ", ".join(
            f"{interface} " + (f"paused ({member['reason'] or 'no reason'})" if member["paused"] else "ready")
            + (" on a call" if member["in_call"] else "") for interface, member in members.items()))
    if result.unknown_events:
        print("events without a model (kept and counted): "
              + ", ".join(f"{name} {count}" for name, count in result.unknown_events.items()))
    return 0


def _record(settings: Settings, args: argparse.Namespace) -> int:
    asyncio.run(_record_async(settings, args.file, args.seconds))
    return 0


async def _record_async(settings: Settings, path: Path, seconds: int | None) -> None:
    from contactcentre.telephony.ami.client import AmiClient
    from contactcentre.telephony.recorder import FlightRecorder
    from contactcentre.telephony.tracker import RESYNC_LISTS

    client = AmiClient(settings.ami)
    client.recorder = FlightRecorder(path)

    async def ask_what_exists() -> None:
        # What the server's tracker asks after every login: the answers, recorded with the stream, tell
        # a replay which calls (and bridges) were already up when the recording, or a reconnect in it, began.
        for action, _, _ in RESYNC_LISTS:
            await client.send_list(action)

    client.on_connected(ask_what_exists)
    try:
        await client.start()
        print(f"recording AMI from {settings.ami.host}:{settings.ami.port} into {path} ({client.status.value})",
              file=sys.stderr)
        await asyncio.sleep(seconds if seconds else float("inf"))
    finally:
        await client.close()
        client.recorder.close()


def _agent_add(settings: Settings, args: argparse.Namespace) -> int:
    password = getpass.getpass("password: ") if sys.stdin.isatty() else sys.stdin.readline().rstrip("\n")
    if len(password) < 8:
        print("contactcentre: password: at least 8 characters", file=sys.stderr)
        return 2
    asyncio.run(_agent_add_async(settings.database.url, args, password))
    print(f"added {args.role} {args.username}")
    return 0


async def _agent_add_async(url: str, args: argparse.Namespace, password: str) -> None:
    from contactcentre.crm.accounts import create_agent
    from contactcentre.crm.models import Role
    from contactcentre.crm.store import create_engine, session_factory, upgrade

    await upgrade(url)
    engine = create_engine(url)
    try:
        await create_agent(session_factory(engine), args.username, password, args.name, args.device, Role(args.role))
    finally:
        await engine.dispose()


def _demo(settings: Settings, args: argparse.Namespace) -> int:
    settings = settings.with_overrides(database={"url": args.database}, pbx={"mode": "simulator"},
                                       **({"server": {"port": args.port}} if args.port else {}))
    asyncio.run(_demo_async(settings, args.customers))
    return 0


async def _demo_async(settings: Settings, customers: int) -> None:
    from contactcentre.app import create_app
    from contactcentre.crm.seed import customer_count
    from contactcentre.web.keys import SERVICES

    app = create_app(settings, demo_traffic=True)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()  # runs migrations and starts the PBX simulator
    services = app[SERVICES]
    if await customer_count(services.sessions) == 0:
        await _seed_async(settings.database.url, customers, True)
    logins = await _demo_logins(services.sessions)
    site = web.TCPSite(runner, settings.server.host, settings.server.port)
    await site.start()
    url = f"http://{settings.server.host}:{settings.server.port}/"
    print(f"\nContact centre demo running at {url}  (Ctrl+C stops it)")
    print(f"PBX simulator: AMI on 127.0.0.1:{services.simulator.ami.port}, "
          f"{settings.simulator.calls_per_minute:g} calls a minute")
    print("Agent logins (new passwords each start):")
    for username, password in logins:
        print(f"  {username:8} {password}")
    print(flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


async def _demo_logins(sessions) -> list[tuple[str, str]]:
    """Demo agents with fresh random passwords: nothing secret lives in the repo."""
    from sqlalchemy import select

    from contactcentre.crm.accounts import create_agent, hash_password
    from contactcentre.crm.models import Agent

    logins = []
    for username, name, device in DEMO_AGENTS:
        password = secrets.token_urlsafe(9)
        async with sessions() as session, session.begin():
            agent = await session.scalar(select(Agent).where(Agent.username == username))
            if agent is not None:
                agent.password_hash = await asyncio.to_thread(hash_password, password)
        if agent is None:
            await create_agent(sessions, username, password, name, device)
        logins.append((username, password))
    return logins


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)
